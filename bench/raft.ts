/**
 * Raft benchmark (simulated; not a test):
 *
 * 1. CPU cost per committed entry in a 5-node cluster under the simulator's key-value
 *    workload (no faults), with the per-step safety checks off and on. The cost covers the
 *    five Raft cores, the key-value replicas, the simulated network and the clients; the
 *    end-of-run linearizability check is left out.
 * 2. Time from a leader's crash to a new leader (simulated ms) with the default timeouts
 *    (elections 150-300 ms, heartbeats 50 ms, pre-vote and check-quorum on), over many
 *    seeds: the distribution a client of a real cluster would see, minus network latency.
 *
 *     npm run bench:raft      # prints both, writes bench-results/raft.json
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { NodeId } from '../src/kernel/ids.ts';
import { Network } from '../src/raft/testing.ts';
import type { SimProtocol } from '../src/sim/protocol.ts';
import { type RaftDurable, type RaftNodeTypes, raftSim } from '../src/sim/raft/plugin.ts';
import { runSimulation } from '../src/sim/run.ts';

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface CostResult {
  readonly checks: boolean;
  readonly committedEntries: number;
  readonly cpuMs: number;
  readonly usPerEntry: number;
  readonly simulatedMs: number;
}

/** The raft plugin with CPU measured up to the end check, and optionally no step checks. */
function measuredRaft(checks: boolean, onDone: (cpu: number) => void, counts: Map<NodeId, number>) {
  const plugin: SimProtocol<RaftNodeTypes, RaftDurable> = {
    ...raftSim,
    createMonitor(view) {
      const inner = checks ? raftSim.createMonitor(view) : {};
      return {
        ...inner,
        onDeliver(node, item, time) {
          if (item.kind === 'entry') counts.set(node, (counts.get(node) ?? 0) + 1);
          return inner.onDeliver?.(node, item, time);
        },
      };
    },
    createWorkload(ctx) {
      const workload = raftSim.createWorkload(ctx);
      // The history of 50 clients on a few keys is costly to check and is not what this
      // measures; the sweeps in npm test check histories. Step checks still run when on.
      workload.check = () => {
        onDone(cpuMs());
        return { verdict: 'pass', summary: 'history not checked in the benchmark' };
      };
      return workload;
    },
  };
  return plugin;
}

function costPerEntry(checks: boolean, seed: number): CostResult {
  const counts = new Map<NodeId, number>();
  let doneAt = 0;
  const plugin = measuredRaft(checks, (t) => (doneAt = t), counts);
  const start = cpuMs();
  const result = runSimulation(plugin, { seed, nodes: 5, clients: 50, ops: 20_000, faults: [] });
  if (result.verdict !== 'pass') throw new Error(`bench run failed: ${result.message}`);
  const committed = Math.max(...counts.values());
  const cpu = doneAt - start;
  return {
    checks,
    committedEntries: committed,
    cpuMs: Math.round(cpu),
    usPerEntry: Math.round((cpu * 1000) / committed) / 1,
    simulatedMs: Math.round(result.stats.simulatedMs),
  };
}

function percentile(sorted: readonly number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

/** Simulated ms from crashing the leader to another node leading a higher term. */
function failoverMs(seed: number): number {
  const ids = [1, 2, 3, 4, 5];
  const net = new Network<string>({ ids, seed, check: false });
  net.run(2_000, 1);
  const old = net.leader();
  if (old === undefined) throw new Error(`seed ${seed}: no leader after 2 s`);
  // Let the cluster settle into steady heartbeats, then crash at a random phase of them.
  net.run(100 + (seed % 50), 1);
  const oldTerm = net.core(old).status().term;
  const crashedAt = net.now;
  net.crash(old);
  for (let waited = 0; waited < 10_000; waited++) {
    net.run(1, 1);
    const leader = net.leader();
    if (leader !== undefined && leader !== old && net.core(leader).status().term > oldTerm) {
      return net.now - crashedAt;
    }
  }
  throw new Error(`seed ${seed}: no new leader within 10 s of the crash`);
}

const trials = Number(process.env.RAFT_BENCH_FAILOVERS ?? 500);
const cost = [costPerEntry(false, 1), costPerEntry(true, 1)];
const failovers = Array.from({ length: trials }, (_, i) => failoverMs(i + 1)).sort((a, b) => a - b);
const dist = {
  trials,
  minMs: failovers[0],
  p50Ms: percentile(failovers, 50),
  p90Ms: percentile(failovers, 90),
  p99Ms: percentile(failovers, 99),
  maxMs: failovers[failovers.length - 1],
};

console.log('CPU per committed entry, 5-node simulated cluster, 50 clients, no faults:');
for (const c of cost) {
  console.log(
    `  safety checks ${c.checks ? 'on ' : 'off'}: ${c.usPerEntry} µs/entry (${c.committedEntries} entries, ${c.cpuMs} ms CPU, ${c.simulatedMs} simulated ms)`,
  );
}
console.log(`Leader crash to new leader, ${trials} seeds (simulated ms, defaults 150-300 ms):`);
console.log(
  `  min ${dist.minMs}  p50 ${dist.p50Ms}  p90 ${dist.p90Ms}  p99 ${dist.p99Ms}  max ${dist.maxMs}`,
);
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/raft.json', `${JSON.stringify({ cost, failover: dist }, null, 2)}\n`);
console.log('wrote bench-results/raft.json');
