/**
 * Gossip measured in the simulator (no real agents; `bench:gossip` against serf needs the
 * node host and is not here yet):
 *
 * 1. dissemination (src/sim/gossip/dissemination.ts, a round model fast enough for 10,000
 *    nodes): rounds until all know, median and max, for push, pull, push-pull and
 *    rumour+digest, against push ≈ log2 N + ln N and push-pull ≈ log3 N + ln ln N;
 *    messages and bytes per node per round.
 * 2. membership bandwidth without churn, from the full cores: bytes per node per second
 *    in a window after the cluster formed, and CPU seconds per simulated minute.
 * 3. false positives at n = 50: dead verdicts about live nodes over fault-free seeds, and
 *    with one node slowed by 300 ms each way, Lifeguard on against off.
 *
 *     npm run bench:gossip-sim                      # the seed counts (long)
 *     npm run bench:gossip-sim -- --quick           # a few seeds of each, to try it
 *     npm run bench:gossip-sim -- --only spread,bandwidth,false --sizes 100,1000
 *     npm run bench:gossip-sim -- --only bandwidth --sizes 1000 --form-ms 60000
 *
 * 4. Lifeguard (`--only lifeguard`, not in the default set): one of n = 50 nodes CPU-starved
 *    by the simulator's slow fault (inputs handled 300 ms late on average) from 5 s to
 *    30 s, 300 seeds, wrong dead verdicts with Lifeguard on and off, and their ratio:
 *
 *     npm run bench:gossip-sim -- --only lifeguard --out bench-results/gossip-lifeguard.json
 *     npm run bench:gossip-sim -- --only lifeguard --lifeguard-seeds 30 --slow-ms 1000
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { GOSSIP_DEFAULTS } from '../src/gossip/config.ts';
import { msgBytes } from '../src/gossip/wire.ts';
import { Rng } from '../src/kernel/rng.ts';
import { ROUNDS_MAX, type Scheme, spread, theoryRounds } from '../src/sim/gossip/dissemination.ts';
import { lifeguardExperiment } from '../src/sim/gossip/lifeguard.ts';
import { gossipSimProtocol } from '../src/sim/gossip/plugin.ts';
import type { ScheduledAction } from '../src/sim/nemesis.ts';
import { runSimulation } from '../src/sim/run.ts';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? undefined : args[i + 1];
};
const quick = args.includes('--quick');
const only = new Set((flag('only') ?? 'spread,bandwidth,false').split(','));

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]!, min: s[0]! };
}

function cpuSeconds<T>(f: () => T): [T, number] {
  const t0 = process.cpuUsage();
  const r = f();
  const u = process.cpuUsage(t0);
  return [r, (u.user + u.system) / 1e6];
}

// --- 1. dissemination ----------------------------------------------------------------------

const eventMsg = (n: number, withRumour: boolean) =>
  msgBytes({
    type: 'gossip',
    rumours: withRumour
      ? [{ kind: 'event', event: { origin: 1, seq: 1, name: 'e', payload: 'x'.repeat(64) } }]
      : [],
    digest: {
      hash: 0,
      members: n,
      entries: Array.from({ length: Math.min(GOSSIP_DEFAULTS.digestEntriesMax, n) }, (_, i) => ({
        id: i + 1,
        incarnation: 1,
        gone: false,
      })),
      heads: [{ origin: 1, seq: 1 }],
    },
  });

function dissemination() {
  const plan = quick
    ? [
        [100, 20],
        [1_000, 10],
        [10_000, 3],
      ]
    : [
        [100, 300],
        [1_000, 300],
        [10_000, 30],
      ];
  const schemes: Scheme[] = ['push', 'pull', 'push-pull', 'rumour+digest'];
  const out = [];
  for (const [n, seeds] of plan as [number, number][]) {
    for (const scheme of schemes) {
      const [runs, cpu] = cpuSeconds(() =>
        Array.from({ length: seeds }, (_, s) => spread(scheme, n, Rng.fromSeed(s + 1))),
      );
      const rounds = stats(runs.map((r) => r.rounds));
      const msgsPerNodeRound = stats(runs.map((r) => r.messages / n / r.rounds)).median;
      const bytesPerMsg =
        scheme === 'rumour+digest'
          ? eventMsg(n, true)
          : msgBytes({
              type: 'gossip',
              rumours: [
                { kind: 'event', event: { origin: 1, seq: 1, name: 'e', payload: 'x'.repeat(64) } },
              ],
            });
      const row = {
        n,
        seeds,
        scheme,
        roundsMedian: rounds.median,
        roundsMax: rounds.max,
        neverAll: runs.filter((r) => r.rounds > ROUNDS_MAX).length,
        theory:
          scheme === 'push' || scheme === 'push-pull'
            ? Number(theoryRounds(scheme, n).toFixed(2))
            : null,
        messagesPerNodePerRound: Number(msgsPerNodeRound.toFixed(3)),
        bytesPerMessage: bytesPerMsg,
        bytesPerNodePerRound: Number((msgsPerNodeRound * bytesPerMsg).toFixed(1)),
        viaDigestMedian: stats(runs.map((r) => r.viaDigest)).median,
        cpuSeconds: Number(cpu.toFixed(2)),
      };
      console.log(JSON.stringify(row));
      out.push(row);
    }
  }
  return out;
}

// --- 2. bandwidth without churn -------------------------------------------------------------

function bandwidth() {
  const sizes = (flag('sizes') ?? (quick ? '100,300' : '100,300,1000')).split(',').map(Number);
  const out = [];
  for (const n of sizes) {
    // The join of n nodes queues n alive rumours on every node; the window starts after they drained.
    const formMs = Number(flag('form-ms') ?? (n >= 1_000 ? 30_000 : 15_000));
    const windowMs = 15_000;
    const p = gossipSimProtocol({
      name: 'gossip',
      description: 'bandwidth',
      workload: { safetyMs: formMs + windowMs, publishWindowMs: 1, convergeMs: 30_000 },
      encodeEvery: 1 << 30,
      windowFromMs: formMs,
    });
    const [r, cpu] = cpuSeconds(() =>
      runSimulation(p, { seed: 1, nodes: n, ops: 0, clients: 0, faults: [] }),
    );
    const ledger = p.lastLedger()!;
    const row = {
      n,
      verdict: r.verdict,
      message: r.message.slice(0, 120),
      windowSeconds: windowMs / 1000,
      bytesPerNodePerSecond: Math.round(ledger.windowBytes / n / (windowMs / 1000)),
      messagesPerNodePerSecond: Number((ledger.windowMessages / n / (windowMs / 1000)).toFixed(2)),
      simulatedSeconds: r.stats.simulatedMs / 1000,
      cpuSeconds: Number(cpu.toFixed(1)),
      cpuSecondsPerSimulatedMinute: Number(((cpu / r.stats.simulatedMs) * 60_000).toFixed(1)),
    };
    console.log(JSON.stringify(row));
    out.push(row);
  }
  return out;
}

// --- 3. false positives ---------------------------------------------------------------------

function slowNode(node: number, n: number, delayMs: number): ScheduledAction[] {
  const out: ScheduledAction[] = [];
  for (let x = 1; x <= n; x++) {
    if (x === node) continue;
    out.push({ atMs: 5_000, action: { type: 'clog', from: node, to: x, delayMs } });
    out.push({ atMs: 5_000, action: { type: 'clog', from: x, to: node, delayMs } });
  }
  return out;
}

function falsePositives() {
  const healthySeeds = Number(flag('healthy-seeds') ?? (quick ? 20 : 300));
  const slowSeeds = Number(flag('slow-seeds') ?? (quick ? 10 : 100));
  const n = 50;
  const healthy = gossipSimProtocol({
    name: 'gossip',
    description: 'healthy',
    workload: { safetyMs: 30_000, publishWindowMs: 20_000 },
  });
  let healthyFalse = 0;
  let healthyFailed = 0;
  for (let seed = 1; seed <= healthySeeds; seed++) {
    const r = runSimulation(healthy, { seed, nodes: n, ops: 20, faults: [] });
    if (r.verdict !== 'pass') healthyFailed++;
    healthyFalse += healthy.lastMonitor()!.falseDead;
  }
  const variants = {
    lifeguardOn: {},
    // Lifeguard off: no health score (so nacks change nothing) and a fixed suspicion timeout
    // that confirmations cannot shorten nor a lone accuser lengthen.
    lifeguardOff: { awarenessMax: 1, suspicionMaxTimeoutMult: 1 },
  };
  const slow: Record<string, { wrongDead: number; verdicts: number; seeds: number }> = {};
  for (const [name, config] of Object.entries(variants)) {
    const p = gossipSimProtocol({
      name: 'gossip',
      description: name,
      config,
      workload: { safetyMs: 35_000, publishWindowMs: 20_000 },
    });
    let wrongDead = 0;
    let verdicts = 0;
    for (let seed = 1; seed <= slowSeeds; seed++) {
      const slowOne = 1 + (seed % n);
      runSimulation(p, {
        seed,
        nodes: n,
        ops: 20,
        faults: ['clog'],
        scenario: slowNode(slowOne, n, 300),
      });
      wrongDead += p.lastMonitor()!.falseDead;
      verdicts += p.lastMonitor()!.verdicts;
    }
    slow[name] = { wrongDead, verdicts, seeds: slowSeeds };
    console.log(JSON.stringify({ slowNode300ms: name, wrongDead, verdicts, seeds: slowSeeds }));
  }
  const row = {
    n,
    healthySeeds,
    healthyFalseDead: healthyFalse,
    healthyFailedRuns: healthyFailed,
    slow,
  };
  console.log(JSON.stringify(row));
  return row;
}

// --- 4. Lifeguard against a CPU-starved node ------------------------------------------------

function lifeguard() {
  const seeds = Number(flag('lifeguard-seeds') ?? (quick ? 10 : 300));
  const n = Number(flag('lifeguard-nodes') ?? 50);
  const slowMs = Number(flag('slow-ms') ?? 300);
  const counts = lifeguardExperiment({ seeds, n, slowMs });
  const row = {
    n,
    seeds,
    slowMeanMs: slowMs,
    on: counts.on,
    off: counts.off,
    // on ≤ off/50 is the goal; the ratio is on/off (null when off saw none).
    ratioOnToOff: counts.off.wrongDead === 0 ? null : counts.on.wrongDead / counts.off.wrongDead,
    goalMet: counts.on.wrongDead * 50 <= counts.off.wrongDead && counts.off.wrongDead > 0,
  };
  console.log(JSON.stringify(row));
  return row;
}

const results: Record<string, unknown> = { quick, at: new Date().toISOString() };
if (only.has('spread')) results.dissemination = dissemination();
if (only.has('bandwidth')) results.bandwidth = bandwidth();
if (only.has('false')) results.falsePositives = falsePositives();
if (only.has('lifeguard')) results.lifeguard = lifeguard();
mkdirSync('bench-results', { recursive: true });
const outPath = flag('out') ?? 'bench-results/gossip-sim.json';
writeFileSync(outPath, `${JSON.stringify(results, null, 2)}\n`);
console.log(`wrote ${outPath}`);
