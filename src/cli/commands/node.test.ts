import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
