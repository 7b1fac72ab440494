import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EtcdTestCluster,
  etcdctl,
  findEtcdctl,
  type Run,
  startEtcdTestCluster,
} from './etcd-harness.ts';
import { waitForLeader } from './harness.ts';

/**
 * etcd's auth through etcdctl, unchanged, on a real 3-node cluster (Raft and Multi-Paxos):
 * users and roles, `auth enable`, then a write without credentials and one outside the
 * user's permission refused with etcd's messages and nothing written, and allowed ones.
 */
const bin = findEtcdctl();
if (bin === undefined) {
  console.warn('SKIPPED test/e2e/etcdctl-auth.test.ts: no etcdctl (apt-get install etcd-client)');
}

function ok(run: Run): string {
  expect(run.code, `etcdctl failed: ${run.stderr}`).toBe(0);
  return run.stdout;
}

describe.skipIf(bin === undefined).each(['raft', 'multipaxos'] as const)(
  'etcdctl auth against a 3-node %s cluster',
  (protocol) => {
    let t: EtcdTestCluster;
    const ctl = (args: readonly string[], input?: string) =>
      etcdctl(bin as string, t.endpoints, args, input);

    beforeAll(async () => {
      t = await startEtcdTestCluster(3, ['--protocol', protocol], 3);
      await waitForLeader(t.cluster);
    }, 90_000);
    afterAll(async () => {
      await t?.cleanup();
    });

    it('adds users and roles, enables auth, refuses what is not permitted, allows what is', async () => {
      expect(ok(await ctl(['user', 'add', 'root:rootpw']))).toBe('User root created\n');
      expect(ok(await ctl(['role', 'add', 'app']))).toBe('Role app created\n');
      expect(
        ok(await ctl(['role', 'grant-permission', 'app', '--prefix=true', 'readwrite', 'app/'])),
      ).toMatch(/Role app updated/);
      ok(await ctl(['user', 'add', 'alice:alicepw']));
      expect(ok(await ctl(['user', 'grant-role', 'alice', 'app']))).toBe(
        'Role app is granted to user alice\n',
      );
      ok(await ctl(['put', 'secret', 's1']));
      // etcdctl creates the root role and grants it when the server says it is missing.
      expect(ok(await ctl(['auth', 'enable']))).toBe('Authentication Enabled\n');

      const anonymous = await ctl(['put', 'secret', 'x']);
      expect(anonymous.code).not.toBe(0);
      expect(anonymous.stderr).toMatch(/user name is empty/);
      const outside = await ctl(['--user', 'alice:alicepw', 'put', 'secret', 'x']);
      expect(outside.code).not.toBe(0);
      expect(outside.stderr).toMatch(/permission denied/);
      const badPassword = await ctl(['--user', 'alice:nope', 'get', 'app/1']);
      expect(badPassword.code).not.toBe(0);
      expect(badPassword.stderr).toMatch(/authentication failed/);
      expect(ok(await ctl(['--user', 'root:rootpw', 'get', 'secret', '--print-value-only']))).toBe(
        's1\n',
      );

      expect(ok(await ctl(['--user', 'alice:alicepw', 'put', 'app/1', 'ok']))).toBe('OK\n');
      expect(ok(await ctl(['--user', 'alice:alicepw', 'get', 'app/', '--prefix']))).toBe(
        'app/1\nok\n',
      );
      expect(ok(await ctl(['--user', 'root:rootpw', 'user', 'list']))).toBe('alice\nroot\n');
      expect(ok(await ctl(['--user', 'root:rootpw', 'role', 'get', 'app']))).toMatch(/app\//);
      const notAdmin = await ctl(['--user', 'alice:alicepw', 'user', 'add', 'eve:x']);
      expect(notAdmin.stderr).toMatch(/permission denied/);
      expect(ok(await ctl(['--user', 'root:rootpw', 'auth', 'disable']))).toBe(
        'Authentication Disabled\n',
      );
      expect(ok(await ctl(['get', 'secret', '--print-value-only']))).toBe('s1\n');
    }, 60_000);
  },
);
