import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EtcdTestCluster,
  etcdctl,
  etcdctlBackground,
  findEtcdctl,
  type Run,
  startEtcdTestCluster,
} from './etcd-harness.ts';
import { testNodeArgs, waitForLeader, waitUntil } from './harness.ts';

/**
 * Leases on real processes, for Raft and for Multi-Paxos: etcdctl's lease commands, the
 * etcd3 client's leases, expiry decided by the leader's lessor (src/replica/lessor.ts), and
 * the failover promise: kill -9 of the leader while a client keeps a lease alive leaves the
 * lease and its keys alone; a lease left without keep-alives expires within its TTL plus an
 * election.
 */
const bin = findEtcdctl();
if (bin === undefined) {
  console.warn('SKIPPED test/e2e/lease.test.ts: no etcdctl (apt-get install etcd-client)');
}

const protocols = ['raft', 'multipaxos'] as const;

/** The nodes' election timeout (testNodeArgs): a failover takes about one to two of them. */
const ELECTION_MS = Number(testNodeArgs[testNodeArgs.indexOf('--election-timeout-ms') + 1]);

function ok(run: Run): string {
  expect(run.code, `etcdctl failed: ${run.stderr}`).toBe(0);
  return run.stdout;
}

/** The hex lease id etcdctl prints in "lease <id> granted with TTL(<n>s)". */
function grantedId(out: string): string {
  const m = /^lease ([0-9a-f]+) granted with TTL\((\d+)s\)/.exec(out);
  if (m?.[1] === undefined) throw new Error(`not a grant: ${out}`);
  return m[1];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(bin === undefined).each(protocols)('leases on a 3-node %s cluster', (protocol) => {
  let t: EtcdTestCluster;
  const ctl = (args: readonly string[]) => etcdctl(bin as string, t.endpoints, args);

  beforeAll(async () => {
    t = await startEtcdTestCluster(3, ['--protocol', protocol]);
    await waitForLeader(t.cluster);
  }, 90_000);
  afterAll(async () => {
    await t?.cleanup();
  });

  it('etcdctl: lease grant, put --lease, keep-alive --once, timetolive --keys, list, revoke takes the keys', async () => {
    const id = grantedId(ok(await ctl(['lease', 'grant', '60'])));
    ok(await ctl(['put', 'lease/a', '1', `--lease=${id}`]));
    ok(await ctl(['put', 'lease/b', '2', `--lease=${id}`]));
    expect(ok(await ctl(['lease', 'keep-alive', '--once', id]))).toBe(
      `lease ${id} keepalived with TTL(60)\n`,
    );
    const ttl = ok(await ctl(['lease', 'timetolive', id, '--keys']));
    expect(ttl).toMatch(
      new RegExp(
        `^lease ${id} granted with TTL\\(60s\\), remaining\\((59|60)s\\), attached keys\\(\\[lease/a lease/b\\]\\)`,
      ),
    );
    expect(ok(await ctl(['lease', 'list']))).toContain(id);
    expect(ok(await ctl(['lease', 'revoke', id]))).toBe(`lease ${id} revoked\n`);
    expect(ok(await ctl(['get', 'lease/', '--prefix']))).toBe('');
    expect(ok(await ctl(['lease', 'timetolive', id]))).toBe(`lease ${id} already expired\n`);
    const again = await ctl(['lease', 'revoke', id]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('requested lease not found');
    const missing = await ctl(['put', 'k', 'v', `--lease=${id}`]);
    expect(missing.stderr).toContain('requested lease not found');
  });

  it('the etcd3 client: a lease it keeps alive holds its key; revoking it deletes the key', async () => {
    const client = new Etcd3({ hosts: t.endpoints.split(',').map((h) => `http://${h}`) });
    try {
      const lease = client.lease(2);
      await lease.put('e3lease/k').value('v');
      // Past its TTL: kept alive by the client meanwhile.
      await sleep(3500);
      expect(await client.get('e3lease/k').string()).toBe('v');
      await lease.revoke();
      expect(await client.get('e3lease/k').string()).toBeNull();
    } finally {
      client.close();
    }
  }, 30_000);

  it('a lease kept alive through kill -9 of the leader survives with its key; left alone, it expires within TTL plus an election', async () => {
    const cluster = t.cluster;
    const ttlSeconds = 3;
    const id = grantedId(ok(await ctl(['lease', 'grant', String(ttlSeconds)])));
    ok(await ctl(['put', 'failover/k', 'held', `--lease=${id}`]));
    const keeper = etcdctlBackground(bin as string, t.endpoints, ['lease', 'keep-alive', id]);
    try {
      await waitUntil('a first keep-alive', async () =>
        keeper.output().includes('keepalived') ? true : undefined,
      );
      const leader = await waitForLeader(cluster);
      await cluster.kill(leader, 'SIGKILL');
      await waitForLeader(cluster);
      // Two TTLs after the kill, kept alive all along through the new leader.
      await sleep(2 * ttlSeconds * 1000);
      expect(ok(await ctl(['get', 'failover/k', '--print-value-only']))).toBe('held\n');
      expect(ok(await ctl(['lease', 'timetolive', id]))).toMatch(/remaining\((1|2|3)s\)/);
    } finally {
      await keeper.stop();
    }
    const stopped = Date.now();
    const gone = await waitUntil(
      'the lease to expire',
      async () => {
        const run = await ctl(['get', 'failover/k', '--print-value-only']);
        return run.code === 0 && run.stdout === '' ? Date.now() : undefined;
      },
      20_000,
    );
    const took = gone - stopped;
    console.log(`${protocol}: lease expired ${took} ms after its last keep-alive`);
    // Not early: etcdctl keeps alive every third of the TTL, so the last keep-alive was at
    // most that long before the stop (half the TTL leaves room for a slow answer)...
    expect(took).toBeGreaterThan((ttlSeconds * 1000) / 2);
    // ...and within TTL + an election, plus a second for the etcdctl polls under load.
    expect(took).toBeLessThan(ttlSeconds * 1000 + 2 * ELECTION_MS + 1000);
    await cluster.start(cluster.nodes.find((n) => !cluster.isRunning(n.id))?.id ?? 1);
  }, 90_000);
});

describe.skipIf(bin === undefined).each(protocols)(
  'etcdctl lock and elect on a 3-node %s cluster',
  (protocol) => {
    let t: EtcdTestCluster;
    beforeAll(async () => {
      t = await startEtcdTestCluster(3, ['--protocol', protocol]);
      await waitForLeader(t.cluster);
    }, 90_000);
    afterAll(async () => {
      await t?.cleanup();
    });

    /**
     * Two etcdctl contenders for one lock or election: the second is started once the first
     * holds it (so which one holds it first is not a race) and holds it only after the first
     * is stopped. `holds` tells from a contender's output that it holds it.
     */
    async function secondTakesOver(
      firstArgs: string[],
      secondArgs: string[],
      holds: { first: string; second: string },
    ): Promise<void> {
      const first = etcdctlBackground(bin as string, t.endpoints, firstArgs);
      await waitUntil('the first to hold it', async () =>
        first.output().includes(holds.first) ? true : undefined,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; etcdctl said: ${first.output()}`);
      });
      const second = etcdctlBackground(bin as string, t.endpoints, secondArgs);
      try {
        await sleep(1000);
        expect(second.output()).not.toContain(holds.second);
        await first.stop();
        await waitUntil(
          'the second to hold it',
          async () => (second.output().includes(holds.second) ? true : undefined),
          15_000,
        );
      } finally {
        await first.stop();
        await second.stop();
      }
    }

    it('lock: a second contender gets the lock once the first holder is stopped', async () => {
      const args = ['lock', 'mylock', '--ttl=2'];
      await secondTakesOver(args, args, { first: 'mylock/', second: 'mylock/' });
    }, 60_000);

    it('elect: the second candidate becomes leader once the first resigns', async () => {
      await secondTakesOver(['elect', 'myelection', 'one'], ['elect', 'myelection', 'two'], {
        first: 'one',
        second: 'two',
      });
    }, 60_000);

    it("the etcd3 client's lock and election", async () => {
      const client = new Etcd3({ hosts: t.endpoints.split(',').map((h) => `http://${h}`) });
      try {
        // Lock (etcd3's does not wait): a second acquire fails while the first holds it.
        const held = await client.lock('e3lock').acquire();
        await expect(client.lock('e3lock').acquire()).rejects.toThrow(/Failed to acquire a lock/);
        await held.release();
        const again = await client.lock('e3lock').acquire();
        await again.release();
        // Election: the second candidate is elected once the first resigns.
        const election = client.election('e3election');
        const a = election.campaign('a');
        await a.wait();
        const b = election.campaign('b');
        let bElected = false;
        const bWon = b.wait().then(() => {
          bElected = true;
        });
        await sleep(500);
        expect(bElected).toBe(false);
        await a.resign();
        await bWon;
        await b.resign();
      } finally {
        client.close();
      }
    }, 60_000);
  },
);
