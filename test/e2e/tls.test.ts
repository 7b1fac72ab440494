import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuorateClient } from '../../src/client/client.ts';
import {
  hasOpenssl,
  makeCertificates,
  type TestCertificates,
} from '../../src/runtime/testing/certificates.ts';
import { testNodeArgs, waitUntil } from './harness.ts';
import { freePorts } from './ports.ts';

/**
 * Three real `quorate node` processes with --tls-cert/--tls-key/--tls-ca: peers speak mutual
 * TLS, clients HTTPS, and followers forward to the leader's https URL. (`quorate up` lays out
 * http URLs, so this test starts the processes itself.)
 */
const openssl = hasOpenssl();
if (!openssl) console.warn('SKIPPING the TLS cluster test: openssl is not installed');

const binPath = fileURLToPath(new URL('../../bin/quorate.mjs', import.meta.url));
const children: ChildProcess[] = [];
let dir: string;
let certs: TestCertificates;
let urls: string[];

function readyLine(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    child.once('exit', (code) => reject(new Error(`node exited with ${code} before ready`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(' ready: ')) resolve();
    });
  });
}

beforeAll(async () => {
  if (!openssl) return;
  certs = makeCertificates();
  dir = await mkdtemp(join(tmpdir(), 'quorate-e2e-tls-'));
  const files = {
    cert: join(dir, 'node.pem'),
    key: join(dir, 'node.key'),
    ca: join(dir, 'ca.pem'),
  };
  await writeFile(files.cert, certs.cert);
  await writeFile(files.key, certs.key);
  await writeFile(files.ca, certs.ca);
  await writeFile(join(dir, 'secret'), 'a-cluster-secret-of-enough-bytes');
  const ports = await freePorts(6);
  const ids = [1, 2, 3];
  const clientPort = (id: number) => ports[2 * (id - 1)] as number;
  const peerPort = (id: number) => ports[2 * (id - 1) + 1] as number;
  urls = ids.map((id) => `https://127.0.0.1:${clientPort(id)}`);
  const peers = ids.map((id) => `${id}=127.0.0.1:${peerPort(id)}@${urls[id - 1]}`).join(',');
  const started = ids.map((id) => {
    const child = spawn(
      process.execPath,
      [
        binPath,
        'node',
        ...['--id', String(id), '--data', join(dir, `node-${id}`)],
        ...['--client-listen', `127.0.0.1:${clientPort(id)}`, '--peers', peers],
        ...['--secret-file', join(dir, 'secret'), ...testNodeArgs, '--log-level', 'warn'],
        ...['--tls-cert', files.cert, '--tls-key', files.key, '--tls-ca', files.ca],
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    return readyLine(child);
  });
  await Promise.all(started);
}, 60_000);

afterAll(async () => {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!openssl)('a 3-node cluster with TLS', () => {
  it('elects a leader over mutual TLS and serves put/get over HTTPS from any node', async () => {
    const clients = urls.map(
      (url) => new QuorateClient({ endpoints: [url], ca: certs.ca, timeoutMs: 3000 }),
    );
    const leader = await waitUntil('a leader every node agrees on', async () => {
      const statuses = await Promise.all(
        urls.map((url, i) => clients[i]?.status(url).catch(() => undefined)),
      );
      const named = statuses[0]?.leader;
      if (named === undefined || named === 0) return undefined;
      return statuses.every((s) => s?.leader === named) ? named : undefined;
    });
    expect([1, 2, 3]).toContain(leader);
    for (const [i, client] of clients.entries()) {
      await client.put(`via-${i}`, `from ${i}`);
    }
    for (const client of clients) {
      for (const i of [0, 1, 2]) {
        expect(await client.get(`via-${i}`)).toMatchObject({ entry: { value: `from ${i}` } });
      }
    }
    const plain = urls[0]?.replace(/^https:/, 'http:');
    const answered = await fetch(`${plain}/v1/status`, { signal: AbortSignal.timeout(2000) }).then(
      () => true,
      () => false,
    );
    expect(answered).toBe(false);
  }, 60_000);
});
