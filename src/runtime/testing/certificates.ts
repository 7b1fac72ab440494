/** TEST HARNESS ONLY: a throwaway CA and a certificate it signed, made with openssl. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  readonly ca: string;
  readonly key: string;
  /** Valid for 127.0.0.1 and localhost, for serving and for peer client auth alike. */
  readonly cert: string;
}

/** Whether openssl can be run here; tests that need certificates skip (loudly) without it. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A fresh CA (named `caName`) and a certificate for the loopback address signed by it. */
export function makeCertificates(caName = 'quorate-test-ca'): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'quorate-tls-'));
  try {
    const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    // P-256 keys: far faster to make than RSA, and as good for a test.
    const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    run(
      'req',
      '-x509',
      ...newKey,
      '-days',
      '1',
      '-subj',
      `/CN=${caName}`,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
    );
    run('req', ...newKey, '-subj', '/CN=127.0.0.1', '-keyout', 'node.key', '-out', 'node.csr');
    // Hostname checks look at subjectAltName, not CN.
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    run(
      'x509',
      '-req',
      '-in',
      'node.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      'san.ext',
      '-out',
      'node.pem',
    );
    const read = (file: string) => readFileSync(join(dir, file), 'utf8');
    return { ca: read('ca.pem'), key: read('node.key'), cert: read('node.pem') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
