import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';

/**
 * Certificates for a local cluster's TLS (`quorate up --tls`): a private CA made on the spot
 * and one certificate it signs for the cluster's host, used by every node for its client API
 * and, as both server and client, for its peer links. The CA's private key is thrown away
 * once it has signed: nobody can mint another certificate this cluster trusts. Kept in
 * `dir` (key files mode 0600) and reused by later runs until they near their end.
 */
export interface ClusterCertificateFiles {
  readonly dir: string;
  /** The CA to trust: give it to clients (`--ca`) and to each node (`--tls-ca`). */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

const VALID_DAYS = 365;
/** A certificate that ends sooner than this is made again. */
const RENEW_BEFORE_MS = 7 * 86_400_000;
const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export async function ensureClusterCertificates(
  dir: string,
  host: string,
  now = new Date(),
): Promise<ClusterCertificateFiles> {
  const files = {
    dir,
    ca: join(dir, 'ca.pem'),
    cert: join(dir, 'node.pem'),
    key: join(dir, 'node.key'),
  };
  if (await usable(files, host, now)) return files;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const made = await makeCertificates(host, now);
  await writeFile(files.key, made.key, { mode: 0o600 });
  await writeFile(files.cert, made.cert);
  await writeFile(files.ca, made.ca);
  return files;
}

async function usable(files: ClusterCertificateFiles, host: string, now: Date): Promise<boolean> {
  if (![files.ca, files.cert, files.key].every((f) => existsSync(f))) return false;
  try {
    const cert = new X509Certificate(await readFile(files.cert));
    const ca = new X509Certificate(await readFile(files.ca));
    const key = createPrivateKey(await readFile(files.key));
    const fresh = Date.parse(cert.validTo) - now.getTime() > RENEW_BEFORE_MS;
    const names = isIP(host) === 0 ? cert.checkHost(host) : cert.checkIP(host);
    // A run cut off while writing them leaves files that do not belong together.
    return fresh && names !== undefined && cert.verify(ca.publicKey) && cert.checkPrivateKey(key);
  } catch {
    return false; // unreadable: made again
  }
}

/** PEM texts of a new CA, and of a key and certificate for `host` signed by it. */
export async function makeCertificates(
  host: string,
  now = new Date(),
): Promise<{ ca: string; cert: string; key: string }> {
  // @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata
  // polyfill loaded first; both load only when certificates are made.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const { subtle } = globalThis.crypto;
  x509.cryptoProvider.set(globalThis.crypto);
  const notBefore = new Date(now.getTime() - 60_000); // a little clock skew between processes
  const notAfter = new Date(now.getTime() + VALID_DAYS * 86_400_000);
  const caKeys = await subtle.generateKey(algorithm, false, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    // A name of its own: a client finds the issuer by name, and two clusters' CAs with one
    // name would fail as a bad signature instead of an unknown issuer.
    name: `CN=quorate local cluster CA ${serial().slice(0, 8)}`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
    ],
  });
  const nodeKeys = await subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const names = [
    isIP(host) === 0 ? { type: 'dns' as const, value: host } : { type: 'ip' as const, value: host },
    ...(host === 'localhost' ? [] : [{ type: 'dns' as const, value: 'localhost' }]),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${host}`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    signingKey: caKeys.privateKey,
    publicKey: nodeKeys.publicKey,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension(names),
      // One certificate serves clients and dials peers (peer links check both ends).
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
    ],
  });
  const key = x509.PemConverter.encode(
    await subtle.exportKey('pkcs8', nodeKeys.privateKey),
    'PRIVATE KEY',
  );
  return { ca: ca.toString('pem'), cert: cert.toString('pem'), key };
}

/** A positive random serial (hex), as RFC 5280 asks: unique per CA, at most 20 bytes. */
function serial(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}
