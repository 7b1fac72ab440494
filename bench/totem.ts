/**
 * `npm run bench:totem`: three real `quorate node --protocol totem` processes and three
 * corosync daemons (bench/peers/corosync: network namespaces, a libcpg client; needs root,
 * iproute2 and `apt-get install corosync libcpg-dev`), in the same run, with the same token
 * timeout (TOKEN unset = both at their defaults, 3,000 ms + 650 ms per member above 2):
 *   - ordered messages per second, MB/s and messages per CPU-second of the three node
 *     processes (from /proc; the machine may be shared, and CPU per message is steadier
 *     than wall-clock rates) at 3 nodes, 100 B and 1 KiB, 1 and 3 senders,
 *     SECS seconds x REPS repetitions, equal delivery hashes and complete delivery on every
 *     node; ours with crypto off (`--datagram-crypto insecure-none`, as corosync runs here)
 *     and on (AES-256-GCM), agreed, and safe with crypto off (safe/agreed per cell);
 *   - publish-to-delivered-at-all latency, open loop at each of RATES msgs/s, published at
 *     each node of LAT_AT (1 = the representative, 3 = a member the idle token must be
 *     released to): one streaming publish request (POST /publish/stream, a message written at its send time)
 *     and a server-sent event subscription at every node; a message's latency is its last
 *     node's arrival minus its send time (p50/p99), agreed and safe;
 *   - kill -9 of a member to the new configuration at the survivors, KILLREPS times.
 * CELLS=no skips throughput and latency (for the re-forming run at another TOKEN); CRYPTO
 * ("off on") picks our crypto modes; each mode's nodes get WARMUP_S seconds of unmeasured
 * load first (JIT warm-up; corosync is compiled). BIN launches the nodes through another
 * script (one that starts the inspector's CPU profiler, say). Medians over the repetitions and
 * quorate/corosync per cell, JSON in bench-results/. COROSYNC=no skips corosync.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalCluster } from '../src/cli/commands/up.ts';
import { freePortRange } from '../test/e2e/ports.ts';

const env = (k: string, d: number) => (process.env[k] === undefined ? d : Number(process.env[k]));
const SECS = env('SECS', 10);
const REPS = env('REPS', 3);
const KILLREPS = env('KILLREPS', 3);
const list = (text: string) =>
  text
    .split(' ')
    .filter((x) => x !== '')
    .map(Number);
const RATES = list(process.env.RATES ?? '200 2000');
// Which node publishes in the latency cells (1-based): node 1 is the ring's representative,
// which holds an idle token itself; node 3 must have it released by the representative.
const LAT_AT = list(process.env.LAT_AT ?? '1 3');
const TOKEN = process.env.TOKEN;
const SIZES = list(process.env.SIZES ?? '100 1024');
const SENDERS = list(process.env.SENDERS ?? '1 3');
const CELLS = process.env.CELLS !== 'no';
const CRYPTO = (process.env.CRYPTO ?? 'off on').split(' ').filter((c) => c !== '') as (
  | 'off'
  | 'on'
)[];
const WARMUP_S = env('WARMUP_S', 4);
const BATCH = 200;
// Enough batches in flight that the ring, not the publisher's round trips, sets the rate.
const INFLIGHT = 16;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)]!;
};
const quantile = (xs: readonly number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RingStatus {
  readonly state: string;
  readonly members: readonly number[];
  readonly deliveredMessages: number;
  readonly deliveryHash: string;
}

async function ring(url: string): Promise<RingStatus | undefined> {
  try {
    const res = await fetch(`${url}/ring`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? ((await res.json()) as RingStatus) : undefined;
  } catch {
    return undefined;
  }
}

function batchBody(size: number, tag: string): Uint8Array<ArrayBuffer> {
  const one = 4 + size;
  const out = new Uint8Array(one * BATCH);
  const view = new DataView(out.buffer);
  for (let i = 0; i < BATCH; i++) {
    view.setUint32(i * one, size);
    out.fill(65 + (i % 26), i * one + 4, (i + 1) * one);
    out.set(new TextEncoder().encode(tag).subarray(0, size), i * one + 4);
  }
  return out;
}

async function sender(
  url: string,
  size: number,
  until: number,
  tag: string,
  mode: 'agreed' | 'safe',
): Promise<number> {
  let delivered = 0;
  const body = batchBody(size, tag);
  const worker = async () => {
    while (Date.now() < until) {
      const res = await fetch(`${url}/publish/batch?mode=${mode}`, { method: 'POST', body });
      const r = (await res.json()) as { delivered?: number; backpressure?: number };
      delivered += r.delivered ?? 0;
      if ((r.backpressure ?? 0) > 0) await sleep(5);
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  return delivered;
}

/** The node processes of the cluster under test, for their CPU time. */
let nodePids: number[] = [];
const CLOCK_TICKS_PER_S = 100;

/**
 * User + system CPU seconds the node processes have used (/proc/<pid>/stat fields 14, 15):
 * on a machine shared with other work, messages per CPU-second judges our cost better than
 * wall-clock throughput does.
 */
function nodesCpuS(): number {
  let ticks = 0;
  for (const pid of nodePids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // A process that is gone used no more.
    }
  }
  return ticks / CLOCK_TICKS_PER_S;
}

async function throughputCell(
  urls: string[],
  size: number,
  senders: number,
  mode: 'agreed' | 'safe',
  secs = SECS,
) {
  const before = await Promise.all(urls.map(ring));
  const cpuBefore = nodesCpuS();
  const start = Date.now();
  const counts = await Promise.all(
    urls.slice(0, senders).map((u, i) => sender(u, size, start + secs * 1000, `s${i}`, mode)),
  );
  const total = counts.reduce((a, b) => a + b, 0);
  let end = Date.now();
  let after: (RingStatus | undefined)[] = [];
  for (let i = 0; i < 1500; i++) {
    after = await Promise.all(urls.map(ring));
    end = Date.now();
    if (
      after.every(
        (a, k) => a !== undefined && a.deliveredMessages - before[k]!.deliveredMessages >= total,
      )
    )
      break;
    await sleep(20);
  }
  const complete = after.every(
    (a, k) => a !== undefined && a.deliveredMessages - before[k]!.deliveredMessages === total,
  );
  const hashesEqual = new Set(after.map((a) => a?.deliveryHash)).size === 1;
  const msgsPerS = total / ((end - start) / 1000);
  const cpuS = nodesCpuS() - cpuBefore;
  // Every node handles every message: CPU-seconds of all three nodes per message delivered.
  const msgsPerCpuS = cpuS > 0 ? total / cpuS : Number.NaN;
  return {
    total,
    msgsPerS,
    mbPerS: (msgsPerS * size) / 1e6,
    cpuS,
    msgsPerCpuS,
    complete,
    hashesEqual,
  };
}

/** Server-sent events of one node's deliveries, from its next position on. */
async function subscribe(url: string, onData: (data: string) => void): Promise<() => void> {
  const next = (
    (await (await fetch(`${url}/deliveries?from=999999999999`)).json()) as {
      next: number;
    }
  ).next;
  const u = new URL(`${url}/deliveries?from=${next}&stream=1`);
  return new Promise((resolve, reject) => {
    const req = request(u, (res: IncomingMessage) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end = buf.indexOf('\n\n');
        while (end >= 0) {
          const ev = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (ev.startsWith('data: ')) {
            const item = JSON.parse(ev.slice(6)) as { type: string; data?: string };
            if (item.type === 'message' && item.data !== undefined) onData(item.data);
          }
          end = buf.indexOf('\n\n');
        }
      });
      resolve(() => req.destroy());
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
    req.end();
  });
}

async function latency(
  urls: string[],
  size: number,
  mode: 'agreed' | 'safe',
  rate: number,
  at = 1,
  secs = Math.max(3, SECS / 2),
) {
  const tag = `L${mode[0]}${rate}-${Date.now()}-`;
  const sentAt: number[] = [];
  const arrived = urls.map(() => new Map<number, number>());
  const closers = await Promise.all(
    urls.map((u, k) =>
      subscribe(u, (data) => {
        if (!data.startsWith(tag)) return;
        arrived[k]!.set(Number.parseInt(data.slice(tag.length), 10), performance.now());
      }),
    ),
  );
  const frame = (i: number) => {
    const text = `${tag}${i}-`.padEnd(size, 'x');
    const out = Buffer.alloc(4 + size);
    out.writeUInt32BE(size, 0);
    out.write(text, 4, 'latin1');
    return out;
  };
  const pub = request(`${urls[at - 1]}/publish/stream?mode=${mode}`, { method: 'POST' });
  const answer = new Promise<string>((resolve) => {
    pub.on('response', (res) => {
      let t = '';
      res.on('data', (c: Buffer) => {
        t += c.toString();
      });
      res.on('end', () => resolve(t));
    });
    pub.on('error', (err) => resolve(`error ${err.message}`));
  });
  pub.flushHeaders();
  const durMs = secs * 1000;
  const t0 = performance.now();
  // Open loop: every millisecond, the messages due by now go out as one write; each is
  // stamped with the time it was written.
  while (performance.now() - t0 < durMs) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    const frames: Buffer[] = [];
    while (sentAt.length < due) {
      frames.push(frame(sentAt.length));
      sentAt.push(performance.now());
    }
    if (frames.length > 0) pub.write(Buffer.concat(frames));
    await sleep(1);
  }
  pub.end();
  const reply = await answer;
  for (let i = 0; i < 250 && !arrived.every((m) => m.size >= sentAt.length); i++) await sleep(20);
  for (const close of closers) close();
  const lats: number[] = [];
  let missing = 0;
  for (let i = 0; i < sentAt.length; i++) {
    const at = arrived.map((m) => m.get(i));
    if (at.some((x) => x === undefined)) missing++;
    else lats.push(Math.max(...(at as number[])) - sentAt[i]!);
  }
  return {
    mode,
    rate,
    publisherNode: at,
    sent: sentAt.length,
    deliveredAtAll: lats.length,
    missing,
    p50Ms: quantile(lats, 0.5),
    p99Ms: quantile(lats, 0.99),
    maxMs: quantile(lats, 1),
    publisherReply: reply.trim(),
  };
}

async function oneRing(urls: string[], n: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const rs = await Promise.all(urls.map(ring));
    if (rs.every((r) => r?.state === 'operational' && r.members.length === n))
      return Date.now() - t0;
    await sleep(20);
  }
  throw new Error(`no ring of ${n} within ${timeoutMs} ms`);
}

interface Cell {
  readonly reps: readonly unknown[];
  readonly size: number;
  readonly senders: number;
  readonly msgsPerS: number;
  readonly mbPerS: number;
  /** Messages delivered per CPU-second of the three node processes together. */
  readonly msgsPerCpuS: number;
  readonly allComplete: boolean;
  readonly allHashesEqual: boolean;
}

/**
 * Every cell's repetitions, per mode; the modes alternate within a cell (agreed, safe,
 * agreed, ...) so that a drift in the machine's load or the JIT's warm-up does not land on
 * one mode.
 */
async function cells(
  urls: string[],
  modes: readonly ('agreed' | 'safe')[],
  label: string,
): Promise<Record<'agreed' | 'safe', Cell[]>> {
  const out: Record<'agreed' | 'safe', Cell[]> = { agreed: [], safe: [] };
  for (const size of SIZES) {
    for (const senders of SENDERS) {
      const reps: Record<'agreed' | 'safe', Awaited<ReturnType<typeof throughputCell>>[]> = {
        agreed: [],
        safe: [],
      };
      for (let r = 0; r < REPS; r++) {
        for (const mode of modes) reps[mode].push(await throughputCell(urls, size, senders, mode));
      }
      for (const mode of modes) {
        const xs = reps[mode];
        out[mode].push({
          size,
          senders,
          reps: xs,
          msgsPerS: median(xs.map((x) => x.msgsPerS)),
          mbPerS: median(xs.map((x) => x.mbPerS)),
          msgsPerCpuS: median(xs.map((x) => x.msgsPerCpuS)),
          allComplete: xs.every((x) => x.complete),
          allHashesEqual: xs.every((x) => x.hashesEqual),
        });
        process.stdout.write(
          `quorate ${label} ${mode} ${size} B x${senders}: ${Math.round(out[mode].at(-1)!.msgsPerS)} msgs/s, ${Math.round(out[mode].at(-1)!.msgsPerCpuS)} msgs per node-CPU-second\n`,
        );
      }
    }
  }
  return out;
}

async function quorateRun(crypto: 'off' | 'on', kills: boolean) {
  const dataDir = mkdtempSync(join(tmpdir(), 'quorate-bench-totem-'));
  const portBase = await freePortRange(6);
  const cluster = await startLocalCluster({
    nodes: 3,
    dataDir,
    portBase,
    // BIN: another launcher for the nodes, e.g. one that starts the inspector's profiler.
    ...(process.env.BIN === undefined ? {} : { binPath: process.env.BIN }),
    nodeArgs: [
      '--protocol',
      'totem',
      ...(TOKEN === undefined ? [] : ['--token-ms', TOKEN]),
      ...(crypto === 'off' ? ['--datagram-crypto', 'insecure-none'] : []),
    ],
  });
  const urls = cluster.nodes.map((n) => n.clientUrl);
  nodePids = cluster.nodes.flatMap((n) => {
    const pid = cluster.pid(n.id);
    return pid === undefined ? [] : [pid];
  });
  try {
    await oneRing(urls, 3, 30_000);
    let agreed: Cell[] = [];
    let safe: Cell[] = [];
    const lat = [];
    if (CELLS) {
      if (WARMUP_S > 0) await throughputCell(urls, 100, 1, 'agreed', WARMUP_S);
      const modes = crypto === 'off' ? (['agreed', 'safe'] as const) : (['agreed'] as const);
      ({ agreed, safe } = await cells(urls, modes, `crypto-${crypto}`));
      // The streaming publish and the subscriptions warm up too (the first seconds after a
      // cold start measured tens of ms at p50, later ones 2 ms).
      if (WARMUP_S > 0 && RATES.length > 0) {
        await latency(urls, 100, 'agreed', RATES[0]!, LAT_AT[0] ?? 1, 2);
      }
      for (const rate of RATES) {
        for (const at of LAT_AT) {
          for (const mode of ['agreed', 'safe'] as const) {
            lat.push(await latency(urls, 100, mode, rate, at));
            const l = lat.at(-1)!;
            process.stdout.write(
              `quorate crypto-${crypto} latency ${mode} @${rate}/s at node ${at}: p50 ${l.p50Ms.toFixed(2)} ms p99 ${l.p99Ms.toFixed(2)} ms (${l.deliveredAtAll}/${l.sent} at all)\n`,
            );
          }
        }
      }
    }
    const killMs: number[] = [];
    for (let r = 0; kills && r < KILLREPS; r++) {
      await cluster.kill(3);
      killMs.push(await oneRing(urls.slice(0, 2), 2, 60_000));
      process.stdout.write(`quorate kill -9 -> ring of 2: ${killMs.at(-1)} ms\n`);
      await cluster.start(3);
      await oneRing(urls, 3, 60_000);
      await sleep(1000);
    }
    return {
      crypto,
      cells: agreed,
      safeCells: safe,
      safeOverAgreed: safe.map((c, i) => ({
        size: c.size,
        senders: c.senders,
        ratio: c.msgsPerS / agreed[i]!.msgsPerS,
      })),
      latency: lat,
      killToNewConfigMs: killMs,
      killMedianMs: median(killMs),
    };
  } finally {
    await cluster.stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function quorate() {
  const runs = [];
  for (const [i, c] of CRYPTO.entries()) runs.push(await quorateRun(c, i === 0));
  return runs;
}

function corosync(): Promise<
  { cells: unknown[]; killMedianMs: number; killMs: number[] } | { skipped: string }
> {
  if (process.env.COROSYNC === 'no') return Promise.resolve({ skipped: 'COROSYNC=no' });
  const script = fileURLToPath(new URL('./peers/corosync/bench.sh', import.meta.url));
  const work = mkdtempSync(join(tmpdir(), 'corosync-bench-'));
  const childEnv = {
    ...process.env,
    SECS: String(SECS),
    REPS: String(REPS),
    KILLREPS: String(KILLREPS),
    SIZES: CELLS ? SIZES.join(' ') : '',
    SENDERS: CELLS ? SENDERS.join(' ') : '',
    SCHED_RR: process.env.SCHED_RR ?? 'no',
  };
  return new Promise((resolve) => {
    const child = spawn('bash', [script, work], {
      env: childEnv,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('exit', (code) => {
      let text = '';
      try {
        text = readFileSync(join(work, 'results.txt'), 'utf8');
      } catch {
        resolve({ skipped: `bench.sh exited ${code} without results` });
        return;
      }
      const kv = (line: string) =>
        Object.fromEntries(
          line
            .split(' ')
            .slice(1)
            .map((f) => f.split('=') as [string, string]),
        );
      const tp = text
        .split('\n')
        .filter((l) => l.startsWith('tp '))
        .map(kv);
      const cells = [];
      for (const size of SIZES) {
        for (const senders of SENDERS) {
          const reps = tp.filter((r) => Number(r.size) === size && Number(r.senders) === senders);
          cells.push({
            size,
            senders,
            msgsPerS: median(reps.map((r) => Number(r.msgs_per_s))),
            mbPerS: median(reps.map((r) => Number(r.MB_per_s))),
            allHashesEqual: reps.every((r) => r.hashes_equal === 'yes'),
            gaps: reps.reduce((a, r) => a + Number(r.gaps), 0),
          });
        }
      }
      const killMs = text
        .split('\n')
        .filter((l) => l.startsWith('kill ') && l.includes('observer=n1'))
        .map((l) => Number(kv(l).totem_confchg_s) * 1000);
      rmSync(work, { recursive: true, force: true });
      resolve({ cells, killMs, killMedianMs: median(killMs) });
    });
  });
}

const runs = await quorate();
const theirs = await corosync();
const killMedianMs = runs[0]?.killMedianMs ?? Number.NaN;
const ratios =
  'cells' in theirs
    ? {
        throughput: runs.flatMap((run) =>
          run.cells.map((c, i) => ({
            crypto: run.crypto,
            size: c.size,
            senders: c.senders,
            quorateOverCorosync: c.msgsPerS / (theirs.cells[i] as { msgsPerS: number }).msgsPerS,
          })),
        ),
        reformQuorateOverCorosync: killMedianMs / theirs.killMedianMs,
      }
    : undefined;
const result = {
  bench: 'totem',
  at: new Date().toISOString(),
  command: `SECS=${SECS} REPS=${REPS} KILLREPS=${KILLREPS}${TOKEN === undefined ? '' : ` TOKEN=${TOKEN}`}${CELLS ? '' : ' CELLS=no'} npm run bench:totem`,
  settings: {
    SECS,
    REPS,
    KILLREPS,
    RATES,
    LAT_AT,
    TOKEN: TOKEN ?? 'default',
    CRYPTO,
    WARMUP_S,
    batch: BATCH,
    inflight: INFLIGHT,
  },
  note: 'machine shared with other helpers; corosync crypto off; ours crypto off (insecure-none) and on (AES-256-GCM); corosync at normal priority unless SCHED_RR is set',
  quorate: runs,
  corosync: theirs,
  ratios,
};
mkdirSync('bench-results', { recursive: true });
const file = join(
  'bench-results',
  `totem${TOKEN === undefined ? '' : `-token${TOKEN}`}${CELLS ? '' : '-reform'}.json`,
);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(
  `${JSON.stringify({
    quorate: runs.map((r) => ({
      crypto: r.crypto,
      agreed: r.cells.map((c) => [
        c.size,
        c.senders,
        Math.round(c.msgsPerS),
        Math.round(c.msgsPerCpuS),
      ]),
      safeOverAgreed: r.safeOverAgreed.map((x) => [x.size, x.senders, +x.ratio.toFixed(2)]),
      latency: r.latency.map((l) => [
        l.mode,
        l.rate,
        l.publisherNode,
        +l.p50Ms.toFixed(2),
        +l.p99Ms.toFixed(2),
      ]),
    })),
    killMedianMs,
    corosync: theirs,
    ratios,
  })}\n`,
);
process.stdout.write(`wrote ${file}\n`);
