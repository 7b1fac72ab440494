import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts } from '../../../test/e2e/ports.ts';
import { UsageError } from '../program.ts';
import { resolveConfig } from './node.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorate-node-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const base = {
  id: 1,
  data: join(dir, 'data'),
  clientListen: '127.0.0.1:2379',
  peerListen: '127.0.0.1:2380',
  secretFile: file('secret', 'sixteen-bytes-or-more'),
};

describe('node TLS flags', () => {
  it('reads all three files and advertises an https client URL', () => {
    const config = resolveConfig({
      ...base,
      tlsCert: file('cert.pem', 'CERT'),
      tlsKey: file('key.pem', 'KEY'),
      tlsCa: file('ca.pem', 'CA'),
    });
    expect(config.tls).toEqual({ cert: 'CERT', key: 'KEY', ca: 'CA' });
    expect(config.peers).toEqual([
      { id: 1, peerAddress: '127.0.0.1:2380', clientUrl: 'https://127.0.0.1:2379' },
    ]);
  });

  it('stays plain HTTP without them', () => {
    const config = resolveConfig(base);
    expect(config.tls).toBeUndefined();
    expect(config.peers[0]?.clientUrl).toBe('http://127.0.0.1:2379');
  });

  it('refuses a partial set (peers authenticate each other by the CA)', () => {
    expect(() =>
      resolveConfig({ ...base, tlsCert: file('c.pem', 'C'), tlsKey: file('k.pem', 'K') }),
    ).toThrow(UsageError);
    expect(() =>
      resolveConfig({ ...base, tlsCert: join(dir, 'missing.pem'), tlsKey: 'k', tlsCa: 'c' }),
    ).toThrow(/--tls-cert .*missing\.pem/);
  });
});

describe('node --commit-hints', () => {
  it('defaults to the forwarding follower, takes all or off, and refuses anything else', () => {
    expect(resolveConfig(base).commitHints).toBe('origin');
    expect(resolveConfig({ ...base, commitHints: 'all' }).commitHints).toBe('all');
    expect(resolveConfig({ ...base, commitHints: 'off' }).commitHints).toBe('off');
    expect(() => resolveConfig({ ...base, commitHints: 'some' })).toThrow(
      /--commit-hints must be origin, all or off/,
    );
  });
});

describe('quorate node (spawned) on a port that is taken', () => {
  it.each(['client', 'peer'])(
    'exits 2 with a clear line when its %s port is taken',
    async (which) => {
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      const taken = (blocker.address() as AddressInfo).port;
      const [free] = await freePorts(1);
      const [client, peer] = which === 'client' ? [taken, free] : [free, taken];
      const bin = fileURLToPath(new URL('../../../bin/quorate.mjs', import.meta.url));
      const run = spawnSync(
        process.execPath,
        [
          bin,
          'node',
          ...['--id', '1', '--data', join(dir, `taken-${which}`)],
          ...['--client-listen', `127.0.0.1:${client}`, '--peer-listen', `127.0.0.1:${peer}`],
          ...['--peers', `1=127.0.0.1:${peer}@http://127.0.0.1:${client}`],
          ...['--secret-file', base.secretFile, '--log-level', 'error'],
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      blocker.close();
      expect(run.status).toBe(2);
      expect(run.stderr).toContain(
        `quorate node 1: cannot listen on 127.0.0.1:${taken}: the address is already in use`,
      );
      expect(run.stderr).not.toContain('    at ');
    },
  );
});
