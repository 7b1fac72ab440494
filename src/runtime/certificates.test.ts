import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureClusterCertificates, makeCertificates } from './certificates.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'quorate-certs-'));
  dirs.push(d);
  return d;
}

/** Completes a TLS handshake to a server using `key`/`cert`, trusting `ca`; the error if not. */
async function handshake(server: { key: string; cert: string }, ca: string, host: string) {
  const tlsServer = createServer({ key: server.key, cert: server.cert }, (s) => s.end());
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  const { port } = tlsServer.address() as { port: number };
  try {
    return await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ca, servername: host });
      socket.once('secureConnect', () => {
        resolve('ok');
        socket.destroy();
      });
      socket.once('error', (err) => resolve(err.message));
    });
  } finally {
    tlsServer.close();
  }
}

describe('cluster certificates', () => {
  it('makes a CA and a certificate for the host that it signed, usable for TLS', async () => {
    const made = await makeCertificates('127.0.0.1');
    const ca = new X509Certificate(made.ca);
    const cert = new X509Certificate(made.cert);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkPrivateKey(createPrivateKey(made.key))).toBe(true);
    expect(await handshake(made, made.ca, '127.0.0.1')).toBe('ok');
    // Another cluster's CA does not vouch for it.
    const other = await makeCertificates('127.0.0.1');
    expect(await handshake(made, other.ca, '127.0.0.1')).toMatch(/verify|signature|self-signed/i);
  });

  it('keeps them in the directory and reuses them until they near their end', async () => {
    const dir = await tempDir();
    const files = await ensureClusterCertificates(dir, '127.0.0.1');
    const first = await readFile(files.cert, 'utf8');
    expect((await stat(files.key)).mode & 0o777).toBe(0o600);
    await ensureClusterCertificates(dir, '127.0.0.1');
    expect(await readFile(files.cert, 'utf8')).toBe(first);
    // A year later (less a few days) they are made again.
    const later = new Date(Date.now() + 360 * 86_400_000);
    await ensureClusterCertificates(dir, '127.0.0.1', later);
    expect(await readFile(files.cert, 'utf8')).not.toBe(first);
  });

  it('makes them again when the files do not belong together or name another host', async () => {
    const dir = await tempDir();
    const files = await ensureClusterCertificates(dir, '127.0.0.1');
    const first = await readFile(files.cert, 'utf8');
    // A key from elsewhere (as a run cut off mid-write could leave).
    await writeFile(files.key, (await makeCertificates('127.0.0.1')).key);
    await ensureClusterCertificates(dir, '127.0.0.1');
    const second = await readFile(files.cert, 'utf8');
    expect(second).not.toBe(first);
    const cert = new X509Certificate(second);
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(files.key)))).toBe(true);
    // The cluster moved to a host the certificate does not name.
    await ensureClusterCertificates(dir, 'db1.example');
    const third = new X509Certificate(await readFile(files.cert, 'utf8'));
    expect(third.checkHost('db1.example')).toBe('db1.example');
    expect(third.checkIP('127.0.0.1')).toBeUndefined();
  });
});
