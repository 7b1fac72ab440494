import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NodeId } from '../kernel/ids.ts';
import { makeConfig } from './membership.ts';
import { Network } from './testing.ts';

/**
 * Random schedules of delivery, loss, duplication, reordering, time, partitions, crashes
 * (including torn batches), proposals, reads and compactions on 3–5 nodes: the network's
 * RaftSafetyChecker must never report Election Safety, Log Matching, Leader Completeness or
 * State Machine Safety violations (Raft paper figure 3). Then, healed, the cluster must make
 * progress (liveness).
 */
type Action =
  | { kind: 'deliver'; pick: number }
  | { kind: 'deliverAll' }
  | { kind: 'drop'; pick: number }
  | { kind: 'duplicate'; pick: number }
  | { kind: 'elapse'; ms: number }
  | { kind: 'crash'; node: number; keep: number }
  | { kind: 'restart'; node: number }
  | { kind: 'propose'; node: number }
  | { kind: 'read'; node: number }
  | { kind: 'compact'; node: number }
  | { kind: 'isolate'; node: number }
  | { kind: 'heal' }
  | { kind: 'member'; change: 'addLearner' | 'promote' | 'remove'; node: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 30, arbitrary: fc.record({ kind: fc.constant('deliver' as const), pick: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('deliverAll' as const) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), pick: fc.nat() }) },
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant('elapse' as const),
      ms: fc.integer({ min: 1, max: 200 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      node: fc.nat(),
      keep: fc.integer({ min: -1, max: 4 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('restart' as const), node: fc.nat() }) },
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('propose' as const), node: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), node: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const), node: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('isolate' as const), node: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('heal' as const) }) },
);

const encoder = new TextEncoder();

/** `npm run test:raft-sweep` raises this for a long search; the default keeps `npm test` fast. */
const sweepRuns = Number(process.env.RAFT_SWEEP_RUNS ?? 0);
const sweepTimeoutMs = sweepRuns > 0 ? sweepRuns * 200 : undefined;

const memberAction: fc.Arbitrary<Action> = fc.record({
  kind: fc.constant('member' as const),
  change: fc.constantFrom('addLearner' as const, 'promote' as const, 'remove' as const),
  node: fc.nat(),
});

function perform(net: Network<string>, ids: NodeId[], a: Action, counter: { n: number }): void {
  const nodeOf = (k: number) => ids[k % ids.length] as NodeId;
  const n = net.inFlight.length;
  switch (a.kind) {
    case 'deliver':
      if (n > 0) net.deliverAt(a.pick % n);
      return;
    case 'deliverAll':
      net.deliver();
      return;
    case 'drop':
      if (n > 0) net.inFlight.splice(a.pick % n, 1);
      return;
    case 'duplicate':
      if (n > 0) net.inFlight.push(net.inFlight[a.pick % n] as (typeof net.inFlight)[number]);
      return;
    case 'elapse':
      net.elapse(a.ms);
      return;
    case 'crash': {
      const id = nodeOf(a.node);
      if (!net.node(id).alive) return;
      if (a.keep < 0) net.crash(id);
      else net.crashMidBatch(id, a.keep);
      return;
    }
    case 'restart': {
      const id = nodeOf(a.node);
      if (!net.node(id).alive) net.restart(id);
      return;
    }
    case 'propose': {
      const id = nodeOf(a.node);
      if (net.node(id).alive) net.propose(id, `v${counter.n++}`);
      return;
    }
    case 'read': {
      const id = nodeOf(a.node);
      if (net.node(id).alive) net.request(id, { type: 'read', id: net.requestId() });
      return;
    }
    case 'compact': {
      const id = nodeOf(a.node);
      const node = net.node(id);
      if (!node.alive) return;
      const applied = node.core.status().applied;
      const data = encoder.encode(JSON.stringify(net.appliedData(id)));
      net.request(id, { type: 'compact', id: net.requestId(), index: applied, data });
      return;
    }
    case 'isolate':
      net.isolate(nodeOf(a.node));
      return;
    case 'heal':
      net.heal();
      return;
    case 'member': {
      const leader = net.leader();
      if (leader === undefined) return;
      const change = { type: a.change, node: nodeOf(a.node) };
      net.request(leader, { type: 'changeMembership', id: net.requestId(), change });
      return;
    }
  }
}

describe('Raft safety under random schedules (figure 3 properties)', () => {
  it(
    'keeps Election Safety, Log Matching, Leader Completeness and State Machine Safety',
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 3, max: 5 }),
          fc.nat(),
          fc.boolean(),
          fc.boolean(),
          fc.array(action, { minLength: 50, maxLength: 300 }),
          (size, seed, preVote, hints, actions) => {
            const ids = Array.from({ length: size }, (_, i) => i + 1);
            const net = new Network<string>({
              ids,
              seed,
              raft: {
                preVote,
                checkQuorum: preVote,
                commitHints: hints ? 'all' : 'off',
                inflightMsgsMax: 4,
                appendEntriesMax: 3,
                snapshotChunkBytes: 8,
              },
            });
            const counter = { n: 0 };
            for (const a of actions) perform(net, ids, a, counter);
            // Liveness: once healed and restarted, the cluster elects a leader and commits.
            net.heal();
            for (const id of ids) if (!net.node(id).alive) net.restart(id);
            net.run(2000, 10);
            const leader = net.leader();
            expect(leader).toBeDefined();
            const reply = net.propose(leader as NodeId, 'final');
            expect(reply.type).toBe('accepted');
            net.run(200, 10);
            for (const id of ids)
              expect(net.core(id).status().commit).toBe(
                net.core(leader as NodeId).status().lastIndex,
              );
          },
        ),
        { numRuns: sweepRuns || 150 },
      );
    },
    sweepTimeoutMs,
  );
});

describe('Raft safety with membership changes under random schedules (dissertation 4.1)', () => {
  it(
    'keeps the figure 3 properties while learners are added, promoted and nodes removed',
    () => {
      fc.assert(
        fc.property(
          fc.nat(),
          fc.array(
            fc.oneof({ weight: 9, arbitrary: action }, { weight: 1, arbitrary: memberAction }),
            {
              minLength: 50,
              maxLength: 300,
            },
          ),
          (seed, actions) => {
            const ids = [1, 2, 3, 4, 5];
            const net = new Network<string>({
              ids: [1, 2, 3],
              seed,
              raft: {
                inflightMsgsMax: 4,
                appendEntriesMax: 3,
                snapshotChunkBytes: 8,
                commitHints: 'all',
              },
            });
            net.addNode(4, makeConfig([]));
            net.addNode(5, makeConfig([]));
            const counter = { n: 0 };
            for (const a of actions) perform(net, ids, a, counter);
            net.heal();
            for (const id of ids) if (!net.node(id).alive) net.restart(id);
            net.run(2000, 10);
            expect(net.leader()).toBeDefined();
          },
        ),
        { numRuns: Math.ceil(sweepRuns / 3) || 60 },
      );
    },
    sweepTimeoutMs,
  );
});
