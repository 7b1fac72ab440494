import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enableAuth } from '../../src/cli/commands/up-auth.ts';
import { QuorateClient } from '../../src/client/client.ts';
import { QuorateError } from '../../src/client/errors.ts';
import { type EtcdTestCluster, startEtcdTestCluster } from './etcd-harness.ts';
import { waitForLeader } from './harness.ts';

/**
 * `quorate up --auth` on real processes: the root password printed once works for our
 * client (bearer over HTTP), the etcd3 npm client (token metadata over gRPC) and the CLI,
 * a call without credentials is refused and writes nothing, and the password is in no file
 * of the data directory.
 */
let t: EtcdTestCluster;
let password = '';

beforeAll(async () => {
  t = await startEtcdTestCluster(3, ['--protocol', 'raft'], 3);
  await waitForLeader(t.cluster);
  let printed = '';
  await enableAuth(t.cluster, (line) => {
    printed += line;
  });
  password = /password (\S+)/.exec(printed)?.[1] ?? '';
}, 90_000);
afterAll(async () => {
  await t?.cleanup();
});

const endpoints = () => t.cluster.nodes.map((n) => n.clientUrl);

describe('quorate up --auth', () => {
  it('prints a root password that authenticates on both APIs; no credentials, no write', async () => {
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const anonymous = new QuorateClient({ endpoints: endpoints(), retries: 0 });
    const refused = await anonymous.put('k', 'x').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(QuorateError);
    expect((refused as QuorateError).code).toBe('unauthenticated');

    const root = new QuorateClient({ endpoints: endpoints(), user: { name: 'root', password } });
    await root.put('k', 'v1');
    expect((await root.get('k')).entry?.value).toBe('v1');

    const etcd = new Etcd3({ hosts: t.endpoints.split(','), auth: { username: 'root', password } });
    try {
      await etcd.put('k2').value('v2');
      expect(await etcd.get('k')).toBe('v1');
      const noAuth = new Etcd3({ hosts: t.endpoints.split(',') });
      await expect(noAuth.put('k').value('x')).rejects.toThrow(/user name is empty/);
      noAuth.close();
    } finally {
      etcd.close();
    }
    expect((await root.get('k')).entry?.value).toBe('v1');

    const cli = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [
          'bin/quorate.mjs',
          'kv',
          'get',
          'k2',
          '--endpoints',
          endpoints().join(','),
          '--user',
          `root:${password}`,
        ],
        { env: { ...process.env, QUORATE_FROM_SOURCE: '1' } },
        (err, stdout) => (err === null ? resolve(stdout) : reject(err)),
      ),
    );
    expect(cli).toBe('v2\n');
  }, 60_000);

  it('stores the password nowhere in the data directory', async () => {
    const dir = join(t.cluster.nodes[0]?.logFile ?? '', '..');
    const seen: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if ((await readFile(p)).includes(password)) seen.push(p);
      }
    };
    await walk(dir);
    expect(seen).toEqual([]);
  });
});
