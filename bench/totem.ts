/**
 * `npm run bench:totem`: three real `quorate node --protocol totem` processes and three
 * corosync daemons (bench/peers/corosync: network namespaces, a libcpg client; needs root,
 * iproute2 and `apt-get install corosync libcpg-dev`), in the same run, with the same token
 * timeout (TOKEN unset = both at their defaults, 3,000 ms + 650 ms per member above 2):
 *   - ordered messages per second and MB/s at 3 nodes, 100 B and 1 KiB, 1 and 3 senders,
 *     SECS seconds x REPS repetitions, equal delivery hashes on every node;
 *   - publish-to-delivered latency (ours: one HTTP request per message, answered once
 *     delivered at the publishing node; p50/p99 at each of RATES msgs/s, open loop);
 *   - kill -9 of a member to the new configuration at the survivors, KILLREPS times;
 * medians over the repetitions and quorate/corosync per cell, JSON in bench-results/.
 * Ours always seals its datagrams (AES-256-GCM); corosync runs with crypto off.
 * COROSYNC=no skips corosync (e.g. without root).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalCluster } from '../src/cli/commands/up.ts';
import { freePortRange } from '../test/e2e/ports.ts';

const env = (k: string, d: number) => (process.env[k] === undefined ? d : Number(process.env[k]));
const SECS = env('SECS', 10);
const REPS = env('REPS', 3);
const KILLREPS = env('KILLREPS', 3);
const RATES = (process.env.RATES ?? '200 2000').split(' ').map(Number);
const TOKEN = process.env.TOKEN;
const SIZES = (process.env.SIZES ?? '100 1024').split(' ').map(Number);
const SENDERS = (process.env.SENDERS ?? '1 3').split(' ').map(Number);
const BATCH = 200;
const INFLIGHT = 4;

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

async function sender(url: string, size: number, until: number, tag: string): Promise<number> {
  let delivered = 0;
  const body = batchBody(size, tag);
  const worker = async () => {
    while (Date.now() < until) {
      const res = await fetch(`${url}/publish/batch`, { method: 'POST', body });
      const r = (await res.json()) as { delivered?: number; backpressure?: number };
      delivered += r.delivered ?? 0;
      if ((r.backpressure ?? 0) > 0) await sleep(5);
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  return delivered;
}

async function throughputCell(urls: string[], size: number, senders: number) {
  const before = await Promise.all(urls.map(ring));
  const start = Date.now();
  const counts = await Promise.all(
    urls.slice(0, senders).map((u, i) => sender(u, size, start + SECS * 1000, `s${i}`)),
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
  return { total, msgsPerS, mbPerS: (msgsPerS * size) / 1e6, complete, hashesEqual };
}

async function latency(url: string, size: number, mode: 'agreed' | 'safe', rate: number) {
  const body = new Uint8Array(size).fill(66);
  const lats: number[] = [];
  let failed = 0;
  const until = Date.now() + Math.max(3, SECS / 2) * 1000;
  const gapMs = 1000 / rate;
  const pending: Promise<void>[] = [];
  let next = performance.now();
  while (Date.now() < until) {
    const t0 = performance.now();
    pending.push(
      fetch(`${url}/publish?mode=${mode}`, { method: 'POST', body })
        .then(async (res) => {
          await res.arrayBuffer();
          if (res.status === 200) lats.push(performance.now() - t0);
          else failed++;
        })
        .catch(() => {
          failed++;
        }),
    );
    next += gapMs;
    const wait = next - performance.now();
    if (wait > 1) await sleep(wait);
  }
  await Promise.all(pending);
  return {
    mode,
    rate,
    count: lats.length,
    failed,
    p50Ms: quantile(lats, 0.5),
    p99Ms: quantile(lats, 0.99),
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

async function quorate() {
  const dataDir = mkdtempSync(join(tmpdir(), 'quorate-bench-totem-'));
  const portBase = await freePortRange(6);
  const cluster = await startLocalCluster({
    nodes: 3,
    dataDir,
    portBase,
    nodeArgs: ['--protocol', 'totem', ...(TOKEN === undefined ? [] : ['--token-ms', TOKEN])],
  });
  const urls = cluster.nodes.map((n) => n.clientUrl);
  try {
    await oneRing(urls, 3, 30_000);
    const cells = [];
    for (const size of SIZES) {
      for (const senders of SENDERS) {
        const reps = [];
        for (let r = 0; r < REPS; r++) reps.push(await throughputCell(urls, size, senders));
        cells.push({
          size,
          senders,
          reps,
          msgsPerS: median(reps.map((x) => x.msgsPerS)),
          mbPerS: median(reps.map((x) => x.mbPerS)),
          allComplete: reps.every((x) => x.complete),
          allHashesEqual: reps.every((x) => x.hashesEqual),
        });
        process.stdout.write(
          `quorate ${size} B x${senders}: ${Math.round(cells.at(-1)!.msgsPerS)} msgs/s\n`,
        );
      }
    }
    const lat = [];
    for (const rate of RATES) {
      lat.push(
        await latency(urls[0]!, 100, 'agreed', rate),
        await latency(urls[0]!, 100, 'safe', rate),
      );
    }
    const kills: number[] = [];
    for (let r = 0; r < KILLREPS; r++) {
      await cluster.kill(3);
      kills.push(await oneRing(urls.slice(0, 2), 2, 60_000));
      await cluster.start(3);
      await oneRing(urls, 3, 60_000);
      await sleep(1000);
    }
    return { cells, latency: lat, killToNewConfigMs: kills, killMedianMs: median(kills) };
  } finally {
    await cluster.stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  }
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
    SIZES: SIZES.join(' '),
    SENDERS: SENDERS.join(' '),
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

const ours = await quorate();
const theirs = await corosync();
const ratios =
  'cells' in theirs
    ? {
        throughput: ours.cells.map((c, i) => ({
          size: c.size,
          senders: c.senders,
          quorateOverCorosync: c.msgsPerS / (theirs.cells[i] as { msgsPerS: number }).msgsPerS,
        })),
        reformQuorateOverCorosync: ours.killMedianMs / theirs.killMedianMs,
      }
    : undefined;
const result = {
  bench: 'totem',
  at: new Date().toISOString(),
  settings: {
    SECS,
    REPS,
    KILLREPS,
    RATES,
    TOKEN: TOKEN ?? 'default',
    batch: BATCH,
    inflight: INFLIGHT,
  },
  note: 'machine shared with other helpers; quorate seals datagrams (AES-256-GCM), corosync crypto off; corosync at normal priority unless SCHED_RR is set',
  quorate: ours,
  corosync: theirs,
  ratios,
};
mkdirSync('bench-results', { recursive: true });
const file = join('bench-results', `totem${TOKEN === undefined ? '' : `-token${TOKEN}`}.json`);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(
  `${JSON.stringify({ quorate: ours.cells.map((c) => [c.size, c.senders, Math.round(c.msgsPerS)]), latency: ours.latency, killMedianMs: ours.killMedianMs, corosync: theirs, ratios })}\n`,
);
process.stdout.write(`wrote ${file}\n`);
