/**
 * `npm run bench:gossip`: real quorate gossip agents against real serf agents on loopback,
 * at the same sizes in the same run, with the same SWIM timings (serf's `lan` profile is
 * memberlist's LAN defaults, which are also quorate's: probe 1 s, timeout 500 ms, gossip
 * 200 ms to 3, suspicion multiplier 4).
 *
 * One repetition, for each system: start N agents unjoined; t0, tell agents 2..N to join
 * agent 1, and poll every agent until it sees N alive (join convergence); 5 s idle (CPU
 * per agent from /proc, bytes per agent from quorate's metrics; serf 0.9's memberlist
 * exports no byte counters); kill -9 agent N and poll the others until each sees it
 * failed; a user event from agent 1 until every live agent has it. Every time is reported
 * over agents (min/median/max); a cell's value is the last agent (all see). Repetitions
 * give min/median/max of that, and quorate/serf is the ratio of medians.
 *
 * Env: NS (default "5 20 50"), REPS (default 5), SYSTEMS ("quorate serf"). Every process
 * is stopped by its pid. JSON under bench-results/.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type Agent,
  membersOf,
  publish,
  startAgent,
  stopAgent,
  writeSecret,
} from '../test/e2e/gossip-harness.ts';
import { freePorts } from '../test/e2e/ports.ts';

const run = promisify(execFile);
const HERE = new URL('.', import.meta.url).pathname;
const SERF_DIR = join(HERE, 'peers/serf');
const NS = (process.env.NS ?? '5 20 50').split(/\s+/).filter(Boolean).map(Number);
const REPS = Number(process.env.REPS ?? 5);
const SYSTEMS = (process.env.SYSTEMS ?? 'quorate serf').split(/\s+/).filter(Boolean);
const POLL_MS = 20;
const PHASE_TIMEOUT_MS = 120_000;
const IDLE_MS = 5_000;

interface Spread {
  min: number;
  median: number;
  max: number;
}

interface RepResult {
  converge?: Spread;
  failed?: Spread;
  event?: Spread;
  idleCpuPerAgent?: number;
  idleBytesPerAgentPerS?: number;
  reached: { converge: string; failed: string; event: string };
  load: number;
}

function spread(values: readonly number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  const v = [...values].sort((a, b) => a - b);
  return { min: v[0]!, median: v[Math.floor((v.length - 1) / 2)]!, max: v[v.length - 1]! };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) of a pid so far. */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

async function idleCpu(pids: readonly number[]): Promise<number> {
  const before = pids.map(cpuSeconds);
  await sleep(IDLE_MS);
  const after = pids.map(cpuSeconds);
  const used = after.reduce((s, a, i) => s + a - before[i]!, 0);
  return used / pids.length / (IDLE_MS / 1000);
}

// --- quorate --------------------------------------------------------------------------------

interface AgentStatus {
  readonly members: Readonly<Record<string, number>>;
  readonly membershipVersion: number;
}

/**
 * Seconds from t0 until the agent's status passes `ok`, by long polls that answer when its
 * membership changes (one request per change, not a poll every few ms: polling 50 HTTP
 * endpoints every 20 ms would itself load the two cores the agents run on).
 */
async function waitStatus(
  url: string,
  ok: (s: AgentStatus) => boolean,
  t0: number,
): Promise<number | undefined> {
  let query = '';
  while (Date.now() < t0 + PHASE_TIMEOUT_MS) {
    let s: AgentStatus | undefined;
    try {
      const res = await fetch(`${url}/v1/status${query}`, { signal: AbortSignal.timeout(10_000) });
      s = res.ok ? ((await res.json()) as AgentStatus) : undefined;
    } catch {
      s = undefined;
    }
    if (s === undefined) {
      await sleep(POLL_MS);
      continue;
    }
    if (ok(s)) return (Date.now() - t0) / 1000;
    query = `?since=${s.membershipVersion}&waitMs=5000`;
  }
  return undefined;
}

async function waitAll(
  urls: readonly string[],
  ok: (s: AgentStatus) => boolean,
  t0: number,
): Promise<number[]> {
  const got = await Promise.all(urls.map((u) => waitStatus(u, ok, t0)));
  return got.filter((x): x is number => x !== undefined);
}

async function sentBytes(url: string): Promise<number> {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('quorate_gossip_sent_bytes_total{')) total += Number(line.split(' ')[1]);
  }
  return total;
}

/** Resolves with the seconds from t0 at which each stream sees the event named `name`. */
function watchEvent(urls: readonly string[], name: string) {
  const abort = new AbortController();
  let t0 = 0;
  const arrivals: Promise<number | undefined>[] = [];
  const connected: Promise<void>[] = [];
  for (const url of urls) {
    let ready: () => void = () => {};
    connected.push(new Promise((r) => (ready = r)));
    arrivals.push(
      (async () => {
        try {
          const res = await fetch(`${url}/v1/events/stream`, { signal: abort.signal });
          ready();
          const reader = res.body!.getReader();
          const dec = new TextDecoder();
          let buf = '';
          for (let r = await reader.read(); !r.done; r = await reader.read()) {
            buf += dec.decode(r.value, { stream: true });
            if (buf.includes(`"name":"${name}"`)) return (Date.now() - t0) / 1000;
          }
        } catch {
          ready();
        }
        return undefined;
      })(),
    );
  }
  return {
    connected: Promise.all(connected),
    start: () => {
      t0 = Date.now();
    },
    arrivals: async (): Promise<number[]> => {
      const timer = setTimeout(() => abort.abort(), PHASE_TIMEOUT_MS);
      const got = await Promise.all(arrivals);
      clearTimeout(timer);
      return got.filter((x): x is number => x !== undefined);
    },
  };
}

async function quorateRep(n: number, rep: number, root: string): Promise<RepResult> {
  const dir = join(root, `quorate-n${n}-r${rep}`);
  mkdirSync(dir, { recursive: true });
  writeSecret(dir);
  const ports = await freePorts(n);
  const agents: Agent[] = [];
  try {
    const started = await Promise.all(
      ports.map((p, i) =>
        startAgent({
          name: `q${i + 1}`,
          root: dir,
          peerPort: p,
          join: [],
          readyTimeoutMs: 180_000,
        }),
      ),
    );
    agents.push(...started);
    // Warm the HTTP client and every connection: the first fetch of a process loads undici.
    await Promise.all(agents.map((a) => membersOf(a.url)));
    await sleep(1_000);
    const load = loadavg()[0]!;
    const seed = `127.0.0.1:${ports[0]}`;
    const t0 = Date.now();
    const joins = agents.slice(1).map((a) =>
      fetch(`${a.url}/v1/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ seeds: [seed] }),
      }),
    );
    const converge = await waitAll(
      agents.map((a) => a.url),
      (st) => (st.members.alive ?? 0) >= n,
      t0,
    );
    const joined = await Promise.allSettled(joins);
    const joinsFailed = joined.filter((j) => j.status === 'rejected' || !j.value.ok).length;
    if (joinsFailed > 0)
      console.log(`quorate n=${n} rep=${rep}: ${joinsFailed} of ${n - 1} joins failed`);
    // Idle: CPU and bytes per agent with everyone converged.
    const pids = agents.map((a) => a.child.pid!);
    const bytesBefore = await Promise.all(agents.map((a) => sentBytes(a.url)));
    const cpu = await idleCpu(pids);
    const bytesAfter = await Promise.all(agents.map((a) => sentBytes(a.url)));
    const bytes = bytesAfter.reduce((s, b, i) => s + b - bytesBefore[i]!, 0) / n / (IDLE_MS / 1000);
    // kill -9 the last agent.
    const victim = agents[n - 1]!;
    const live = agents.slice(0, n - 1);
    const tk = Date.now();
    process.kill(victim.child.pid!, 'SIGKILL');
    const failed = await waitAll(
      live.map((a) => a.url),
      (st) => (st.members.dead ?? 0) >= 1,
      tk,
    );
    await sleep(1_000);
    // A user event from agent 1.
    const watch = watchEvent(
      live.map((a) => a.url),
      `bench${rep}`,
    );
    await watch.connected;
    watch.start();
    await publish(live[0]!.url, `bench${rep}`, `rep${rep}`);
    const event = await watch.arrivals();
    return {
      ...optional('converge', spread(converge)),
      ...optional('failed', spread(failed)),
      ...optional('event', spread(event)),
      idleCpuPerAgent: cpu,
      idleBytesPerAgentPerS: bytes,
      reached: {
        converge: `${converge.length}/${n}`,
        failed: `${failed.length}/${n - 1}`,
        event: `${event.length}/${n - 1}`,
      },
      load,
    };
  } finally {
    await Promise.all(agents.map((a) => stopAgent(a, 'SIGKILL')));
  }
}

function optional<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

// --- serf -----------------------------------------------------------------------------------

function parseSerfLine(line: string): { values: Spread | undefined; reached: string } {
  const get = (k: string) => Number(new RegExp(`${k}=([0-9.]+)`).exec(line)?.[1]);
  const reached = /reached=(\d+)/.exec(line)?.[1] ?? '0';
  const agents = /agents=(\d+)/.exec(line)?.[1] ?? '?';
  const min = get('min_s');
  return {
    values: Number.isFinite(min) ? { min, median: get('median_s'), max: get('max_s') } : undefined,
    reached: `${reached}/${agents}`,
  };
}

async function serfRep(n: number, rep: number, root: string): Promise<RepResult> {
  const dir = join(root, `serf-n${n}-r${rep}`);
  mkdirSync(dir, { recursive: true });
  const evlog = join(dir, 'events.log');
  writeFileSync(evlog, '');
  const ports = await freePorts(2 * n);
  const bind = ports.slice(0, n);
  const rpc = ports.slice(n);
  const children: ChildProcess[] = [];
  const py = (args: string[]) =>
    run('python3', [join(SERF_DIR, 'serfrpc.py'), ...args], { timeout: 200_000 })
      .then((r) => r.stdout.trim())
      .catch((e: { stdout?: string }) => (e.stdout ?? '').trim());
  try {
    for (let i = 0; i < n; i++) {
      const child = spawn(
        'serf',
        [
          'agent',
          `-node=s${i + 1}`,
          `-bind=127.0.0.1:${bind[i]}`,
          `-rpc-addr=127.0.0.1:${rpc[i]}`,
          `-event-handler=user:bench=${join(SERF_DIR, 'handler.sh')}`,
          '-log-level=warn',
        ],
        { stdio: 'ignore', env: { ...process.env, SERF_BENCH_EVLOG: evlog } },
      );
      children.push(child);
    }
    const all = rpc.join(',');
    await py(['wait', '--ports', all, '--timeout', '120']);
    await sleep(1_000);
    const load = loadavg()[0]!;
    const conv = parseSerfLine(
      await py([
        'converge',
        '--ports',
        all,
        '--n',
        String(n),
        '--seed',
        `127.0.0.1:${bind[0]}`,
        '--timeout',
        '120',
      ]),
    );
    const cpu = await idleCpu(children.map((c) => c.pid!));
    await sleep(1_000);
    const victim = children[n - 1]!;
    const fail = parseSerfLine(
      await py([
        'failed',
        '--ports',
        rpc.slice(0, n - 1).join(','),
        '--victim',
        `s${n}`,
        '--kill-pid',
        String(victim.pid),
        '--timeout',
        '120',
      ]),
    );
    await sleep(1_000);
    const sendLine = await py([
      'event',
      '--ports',
      String(rpc[0]),
      '--name',
      'bench',
      '--payload',
      `rep${rep}`,
    ]);
    const tSend = Number(/t_send=([0-9.]+)/.exec(sendLine)?.[1]);
    const until = Date.now() + 60_000;
    let lines: string[] = [];
    while (Date.now() < until) {
      lines = readFileSync(evlog, 'utf8').split('\n').filter(Boolean);
      if (lines.length >= n - 1) break;
      await sleep(50);
    }
    const event = lines.map((l) => Number(l.split(' ')[0]) - tSend);
    return {
      ...optional('converge', conv.values),
      ...optional('failed', fail.values),
      ...optional('event', spread(event)),
      idleCpuPerAgent: cpu,
      reached: { converge: conv.reached, failed: fail.reached, event: `${event.length}/${n - 1}` },
      load,
    };
  } finally {
    for (const c of children) {
      if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) continue;
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // Already gone (the victim, killed by serfrpc.py and not yet reaped).
      }
    }
    await sleep(500);
  }
}

// --- report ---------------------------------------------------------------------------------

type Metric = 'converge' | 'failed' | 'event';
const METRICS: readonly Metric[] = ['converge', 'failed', 'event'];

function cell(reps: readonly RepResult[], m: Metric): Spread | undefined {
  return spread(reps.map((r) => r[m]?.max).filter((x): x is number => x !== undefined));
}

const f = (x: number | undefined, d = 2) => (x === undefined ? '-' : x.toFixed(d));

async function main(): Promise<void> {
  await run(process.execPath, [join(HERE, '../scripts/build-lib.mjs')], { timeout: 600_000 });
  const root = mkdtempSync(join(tmpdir(), 'quorate-bench-gossip-'));
  const results: Record<string, Record<number, RepResult[]>> = {};
  try {
    for (const n of NS) {
      for (let rep = 1; rep <= REPS; rep++) {
        for (const system of SYSTEMS) {
          const r =
            system === 'serf' ? await serfRep(n, rep, root) : await quorateRep(n, rep, root);
          const bySize = results[system] ?? {};
          results[system] = bySize;
          const reps = bySize[n] ?? [];
          bySize[n] = reps;
          reps.push(r);
          console.log(
            `${system} n=${n} rep=${rep} load=${f(r.load, 1)} converge ${f(r.converge?.max)} s (${r.reached.converge})` +
              ` failed ${f(r.failed?.max)} s (${r.reached.failed}) event ${f(r.event?.max)} s (${r.reached.event})` +
              ` idle cpu ${f(r.idleCpuPerAgent, 4)} s/s${r.idleBytesPerAgentPerS === undefined ? '' : ` ${f(r.idleBytesPerAgentPerS, 0)} B/s`} per agent`,
          );
        }
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  console.log(
    '\nlast agent to see it, seconds: min/median/max over repetitions; ratio = quorate/serf medians',
  );
  console.log('| N | metric | quorate | serf | ratio |');
  console.log('|---|---|---|---|---|');
  const table: unknown[] = [];
  for (const n of NS) {
    for (const m of METRICS) {
      const q = cell(results.quorate?.[n] ?? [], m);
      const s = cell(results.serf?.[n] ?? [], m);
      const ratio =
        q !== undefined && s !== undefined && s.median > 0 ? q.median / s.median : undefined;
      const fmt = (c: Spread | undefined) =>
        c === undefined ? '-' : `${f(c.min)}/${f(c.median)}/${f(c.max)}`;
      console.log(`| ${n} | ${m} | ${fmt(q)} | ${fmt(s)} | ${f(ratio)} |`);
      table.push({ n, metric: m, quorate: q, serf: s, ratio });
    }
    const idle = (sys: string, k: 'idleCpuPerAgent' | 'idleBytesPerAgentPerS') =>
      spread((results[sys]?.[n] ?? []).map((r) => r[k]).filter((x): x is number => x !== undefined))
        ?.median;
    console.log(
      `| ${n} | idle per agent | ${f(idle('quorate', 'idleCpuPerAgent'), 4)} CPU s/s, ${f(idle('quorate', 'idleBytesPerAgentPerS'), 0)} B/s | ${f(idle('serf', 'idleCpuPerAgent'), 4)} CPU s/s | |`,
    );
  }
  mkdirSync('bench-results', { recursive: true });
  const out = join(
    'bench-results',
    `gossip-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
  writeFileSync(
    out,
    `${JSON.stringify({ ns: NS, reps: REPS, systems: SYSTEMS, table, results }, null, 2)}\n`,
  );
  console.log(`\nwrote ${out}`);
}

await main();
