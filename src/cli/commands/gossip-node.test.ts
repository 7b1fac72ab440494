import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTags, resolveGossipConfig } from './gossip-node.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorate-gossip-cli-'));
const secretFile = join(dir, 'secret');
writeFileSync(secretFile, 'a-cluster-secret-of-enough-bytes\n');
const short = join(dir, 'short');
writeFileSync(short, 'tiny\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { data: join(dir, 'd'), clientListen: '127.0.0.1:0', secretFile };

describe('quorate node --protocol gossip: flags', () => {
  it('takes seeds, tags, listen addresses with port 0, and timing overrides', () => {
    const c = resolveGossipConfig({
      ...base,
      peerListen: '127.0.0.1:0',
      join: '127.0.0.1:7001, 10.0.0.2:7002',
      tags: 'role=web,zone=a=b',
      probeIntervalMs: 2_000,
      reapLeftMs: 60_000,
    });
    expect(c.seeds).toEqual([
      { host: '127.0.0.1', port: 7001 },
      { host: '10.0.0.2', port: 7002 },
    ]);
    expect(c.peerListen).toEqual({ host: '127.0.0.1', port: 0 });
    expect(c.tags).toEqual({ role: 'web', zone: 'a=b' });
    expect(c.core).toEqual({ probeIntervalMs: 2_000, probeTimeoutMs: 1_000, reapLeftMs: 60_000 });
    expect(c.cluster).toBe('quorate');
  });

  it('refuses what cannot run, naming the flag', () => {
    expect(() => resolveGossipConfig({ ...base, join: true })).toThrow(/--join needs seeds/);
    expect(() => resolveGossipConfig({ ...base, join: 'nowhere' })).toThrow(
      /--join 'nowhere' is not host:port/,
    );
    expect(() => resolveGossipConfig({ ...base, secretFile: short })).toThrow(/at least 16 bytes/);
    expect(() => resolveGossipConfig({ data: 'x' })).toThrow(
      /--data, --client-listen and --secret-file/,
    );
    expect(() => parseTags('novalue')).toThrow(/--tags entry 'novalue' is not key=value/);
  });
});
