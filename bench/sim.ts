/**
 * Simulator throughput in simulated messages delivered (and events processed) per second
 * of CPU time, for 5-node runs without faults:
 *
 * - `relay`: a minimal core that forwards each message it receives to its neighbour,
 *   100 messages circulating. Nearly all the time is the simulator's own (network model,
 *   event queue, Core contract hosting), so this is the simulator's figure.
 * - `primary-backup`: the KV fixture with 20 clients; core and workload costs included.
 *   The end-of-run linearizability check is left out: this measures the simulator.
 *
 *     npm run bench:sim        # prints the figures, writes bench-results/sim.json
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { type Core, type CoreTypes, OutputBuffer, type Ready } from '../src/kernel/core.ts';
import type { NodeId } from '../src/kernel/ids.ts';
import type { SimProtocol, Workload, WorkloadIo } from '../src/sim/protocol.ts';
import { primaryBackup, primaryBackupKv } from '../src/sim/reference/plugin.ts';
import type { PbDurable, PbTypes } from '../src/sim/reference/primary-backup.ts';
import { type RunResult, runSimulation } from '../src/sim/run.ts';
import { KvWorkload } from '../src/sim/workload/kv.ts';

interface RelayTypes extends CoreTypes {
  readonly msg: number;
  readonly persist: never;
  readonly deliver: never;
  readonly request: never;
  readonly reply: never;
  readonly event: never;
}

const tokensPerNode = 20;
const relayMs = 20_000;

class RelayCore implements Core<RelayTypes> {
  private readonly out = new OutputBuffer<RelayTypes>();
  private started = false;
  private readonly next: NodeId;

  constructor(
    readonly id: NodeId,
    clusterSize: number,
  ) {
    this.next = (id % clusterSize) + 1;
  }

  tick(): void {
    if (this.started) return;
    this.started = true;
    for (let token = 0; token < tokensPerNode; token++) this.out.send(this.next, token);
  }
  receive(_now: number, _from: NodeId, token: number): void {
    this.out.send(this.next, token);
  }
  request(): void {}
  deadline(): number {
    return this.started ? Number.POSITIVE_INFINITY : 0;
  }
  ready(): Ready<RelayTypes> | undefined {
    return this.out.ready();
  }
  advance(): void {
    this.out.advance();
  }
}

/** No clients: keeps the run going for `relayMs` of simulated time. */
class ForAWhile implements Workload<RelayTypes> {
  private io: WorkloadIo<RelayTypes> | undefined;
  start(io: WorkloadIo<RelayTypes>): void {
    this.io = io;
  }
  onReply(): void {}
  onTimer(): void {}
  exhausted(): boolean {
    return (this.io?.now() ?? 0) >= relayMs;
  }
  heal(): void {}
  done(): boolean {
    return true;
  }
  describePending(): string {
    return '';
  }
  check() {
    return { verdict: 'pass' as const, summary: 'relay' };
  }
}

const relay: SimProtocol<RelayTypes, null> = {
  name: 'relay',
  description: 'benchmark: messages passed round a ring',
  defaultNodes: 5,
  createCore: (init) => new RelayCore(init.id, init.members.length),
  emptyDurable: () => null,
  applyPersist: (durable) => durable,
  createMonitor: () => ({}),
  createWorkload: () => new ForAWhile(),
};

const uncheckedPrimaryBackup: SimProtocol<PbTypes, PbDurable> = {
  ...primaryBackup,
  createWorkload: (ctx) =>
    new KvWorkload<PbTypes>(ctx, primaryBackupKv, () => ({
      verdict: 'pass',
      summary: 'unchecked',
    })),
};

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function measure(name: string, runOnce: (seed: number) => RunResult, rounds: number) {
  runOnce(1_000); // warm up the JIT on a run of the same shape
  let delivered = 0;
  let events = 0;
  const started = cpuSeconds();
  for (let seed = 1; seed <= rounds; seed++) {
    const r = runOnce(seed);
    if (r.verdict !== 'pass') throw new Error(`${name} seed ${seed} failed: ${r.message}`);
    delivered += r.stats.delivered;
    events += r.stats.events;
  }
  const cpu = cpuSeconds() - started;
  const result = {
    protocol: name,
    nodes: 5,
    runs: rounds,
    cpuSeconds: Number(cpu.toFixed(3)),
    messagesDelivered: delivered,
    events,
    messagesPerCpuSecond: Math.round(delivered / cpu),
    eventsPerCpuSecond: Math.round(events / cpu),
  };
  const fmt = (n: number) => n.toLocaleString('en-US');
  console.log(
    `sim ${name}: ${fmt(result.messagesPerCpuSecond)} messages delivered per CPU second, ` +
      `${fmt(result.eventsPerCpuSecond)} events per CPU second ` +
      `(${fmt(delivered)} messages in ${cpu.toFixed(2)} CPU s, 5 nodes)`,
  );
  return result;
}

const results = [
  measure('relay', (seed) => runSimulation(relay, { seed, nodes: 5, clients: 0, ops: 0 }), 3),
  measure(
    'primary-backup',
    (seed) =>
      runSimulation(uncheckedPrimaryBackup, {
        seed,
        nodes: 5,
        clients: 20,
        ops: 50_000,
        faults: [],
      }),
    3,
  ),
];
mkdirSync('bench-results', { recursive: true });
writeFileSync(
  'bench-results/sim.json',
  `${JSON.stringify({ benchmark: 'sim', node: process.version, results }, null, 2)}\n`,
);
