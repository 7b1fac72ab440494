/**
 * `npm run bench:gossip-store`: the anti-entropy store on real gossip agents on loopback
 * (`quorate node --protocol gossip --store merkle`), healing after a partition.
 *
 * One repetition at N agents: start them (one repair a second with a random live peer, the
 * default), write PRELOAD keys of VALUE_BYTES spread over the agents and wait until every
 * root is equal. Partition: each agent of the first half is told to drop its repair traffic
 * to and from every agent of the second half and the reverse (POST /v1/store-faults, an
 * `--unsafe-store-faults` test hook in the store's channel; gossip membership still sees
 * everyone alive, so the repairs that cross the cut are attempted and lost, as in a real
 * partition that left the membership layer's view alone). Both sides then write WRITES new
 * keys and overwrite OVERWRITES preloaded ones each; the roots are checked to differ. Heal:
 * the faults are cleared at every agent at t0, and every agent's status is polled every
 * POLL_MS until all roots are equal: the time to convergence, and the repair bytes every
 * agent sent (encoded, as on the wire, including the in-sync repairs of agents already
 * level) against the data size (keys and values held at one replica) and against the
 * differences written during the partition, and against shipping a whole replica to each of
 * the N agents (`ofFullStateToAll`). Median of REPS.
 *
 * Env: NS (default "5 20"), REPS (default 3), PRELOAD (1000), WRITES (50), OVERWRITES (10),
 * VALUE_BYTES (100). Every process is stopped by its pid. JSON under bench-results/.
 * The machine is shared: the load average is recorded with every repetition.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Agent, startAgent, stopAgent, writeSecret } from '../test/e2e/gossip-harness.ts';
import {
  type StoreStatus,
  storePut,
  storeStatus,
  waitAlive,
  waitConverged,
} from '../test/e2e/gossip-store-harness.ts';
import { freePorts } from '../test/e2e/ports.ts';

const NS = (process.env.NS ?? '5 20').split(/\s+/).filter(Boolean).map(Number);
const REPS = Number(process.env.REPS ?? 3);
const PRELOAD = Number(process.env.PRELOAD ?? 1_000);
const WRITES = Number(process.env.WRITES ?? 50);
const OVERWRITES = Number(process.env.OVERWRITES ?? 10);
const VALUE_BYTES = Number(process.env.VALUE_BYTES ?? 100);
const POLL_MS = 50;
const PHASE_TIMEOUT_MS = 180_000;
const PARTITION_HOLD_MS = 3_000;

interface Rep {
  n: number;
  healMs: number | undefined;
  healBytesSent: number;
  /** The same repairs in the core's compact wire model (wire.ts), as bench:merkle counts. */
  healModelBytesSent: number;
  dataBytes: number;
  entries: number;
  differences: number;
  bytesPerDataByte: number;
  /** Repair bytes against shipping one whole replica to each of the n agents. */
  ofFullStateToAll: number;
  preloadConvergeMs: number | undefined;
  load: [number, number, number];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function value(tag: string): string {
  return tag.padEnd(VALUE_BYTES, '.').slice(0, VALUE_BYTES);
}

/** Writes with bounded concurrency (the agents are on two shared cores). */
async function writeAll(jobs: readonly (() => Promise<Response>)[], parallel = 16) {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      // A loaded machine (load 80 seen) can stall an answer past the client's 10 s: the
      // write is asked again (a put of the same value; last writer wins makes it harmless).
      let res: Response | undefined;
      for (let attempt = 0; res === undefined; attempt++) {
        try {
          res = await job();
        } catch (err) {
          if (attempt >= 2) throw err;
        }
      }
      if (res.status !== 200) throw new Error(`write answered ${res.status}: ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

async function partition(sides: readonly Agent[][]): Promise<void> {
  const [a, b] = sides as [Agent[], Agent[]];
  const tell = (x: Agent, blocked: readonly number[]) =>
    fetch(`${x.url}/v1/store-faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ blocked }),
    }).then((r) => {
      if (!r.ok) throw new Error(`faults answered ${r.status}`);
    });
  await Promise.all([
    ...a.map((x) =>
      tell(
        x,
        b.map((y) => y.id),
      ),
    ),
    ...b.map((x) =>
      tell(
        x,
        a.map((y) => y.id),
      ),
    ),
  ]);
}

const sentBytes = (all: readonly (StoreStatus | undefined)[]) =>
  all.reduce((n, s) => n + (s?.repair.sentBytes ?? 0), 0);
const sentModelBytes = (all: readonly (StoreStatus | undefined)[]) =>
  all.reduce((n, s) => n + (s?.repair.sentModelBytes ?? 0), 0);

async function oneRep(n: number, rep: number): Promise<Rep> {
  const root = mkdtempSync(join(tmpdir(), 'quorate-bench-gstore-'));
  const agents: Agent[] = [];
  try {
    writeSecret(root);
    const ports = await freePorts(n);
    const args = ['--store', 'merkle', '--unsafe-store-faults'];
    const spec = (i: number) => ({
      name: `s${i + 1}`,
      root,
      peerPort: ports[i]!,
      join: i === 0 ? [] : [`127.0.0.1:${ports[0]}`],
      extraArgs: args,
      readyTimeoutMs: 120_000,
    });
    agents.push(await startAgent(spec(0)));
    for (let i = 1; i < n; i += 5) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 5); j++) batch.push(startAgent(spec(j)));
      agents.push(...(await Promise.all(batch)));
    }
    if ((await waitAlive(agents, n, PHASE_TIMEOUT_MS)) !== true) throw new Error('no full view');

    const t0 = Date.now();
    await writeAll(
      Array.from({ length: PRELOAD }, (_, k) => () => {
        const a = agents[k % n]!;
        return storePut(a.url, `pre/${k}`, value(`pre${k}@${a.name}`));
      }),
    );
    const pre = await waitConverged(agents, PHASE_TIMEOUT_MS, POLL_MS * 4);
    const preloadConvergeMs = pre === undefined ? undefined : Date.now() - t0;
    if (pre === undefined) throw new Error('preload never converged');

    const half = Math.floor(n / 2);
    const sides = [agents.slice(0, half), agents.slice(half)];
    await partition(sides);
    await sleep(500); // repairs in flight across the cut drain
    const jobs: (() => Promise<Response>)[] = [];
    sides.forEach((side, s) => {
      for (let k = 0; k < WRITES; k++) {
        const a = side[k % side.length]!;
        jobs.push(() => storePut(a.url, `side${s}/${k}`, value(`s${s}k${k}`)));
      }
      for (let k = 0; k < OVERWRITES; k++) {
        const a = side[k % side.length]!;
        jobs.push(() => storePut(a.url, `pre/${k * 7 + s}`, value(`over${s}.${k}`)));
      }
    });
    await writeAll(jobs);
    await sleep(PARTITION_HOLD_MS);
    const split = await Promise.all(agents.map((a) => storeStatus(a.url)));
    const roots = new Set(split.map((s) => s?.root));
    if (roots.size < 2) throw new Error('the partition did not split the roots');

    const beforeAll = await Promise.all(agents.map((a) => storeStatus(a.url)));
    const before = sentBytes(beforeAll);
    const beforeModel = sentModelBytes(beforeAll);
    const healAt = Date.now();
    await Promise.all(
      agents.map((x) =>
        fetch(`${x.url}/v1/store-faults`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ blocked: [] }),
        }),
      ),
    );
    const healed = await waitConverged(agents, PHASE_TIMEOUT_MS, POLL_MS);
    const healMs = healed === undefined ? undefined : Date.now() - healAt;
    const afterAll = healed ?? (await Promise.all(agents.map((a) => storeStatus(a.url))));
    const after = sentBytes(afterAll);
    const dataBytes = healed?.[0]?.dataBytes ?? 0;
    const r: Rep = {
      n,
      healMs,
      healBytesSent: after - before,
      healModelBytesSent: sentModelBytes(afterAll) - beforeModel,
      dataBytes,
      entries: healed?.[0]?.entries ?? 0,
      differences: 2 * (WRITES + OVERWRITES),
      bytesPerDataByte:
        dataBytes === 0 ? 0 : Math.round(((after - before) / dataBytes) * 1e4) / 1e4,
      ofFullStateToAll:
        dataBytes === 0 ? 0 : Math.round(((after - before) / (n * dataBytes)) * 1e4) / 1e4,
      preloadConvergeMs,
      load: loadavg().map((x) => Math.round(x * 10) / 10) as [number, number, number],
    };
    console.log(`n=${n} rep ${rep + 1}: ${JSON.stringify(r)}`);
    return r;
  } finally {
    await Promise.all(agents.map((a) => stopAgent(a, 'SIGKILL')));
    rmSync(root, { recursive: true, force: true });
  }
}

function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.floor((v.length - 1) / 2)];
}

async function main(): Promise<void> {
  const cells = [];
  for (const n of NS) {
    const reps: Rep[] = [];
    for (let rep = 0; rep < REPS; rep++) reps.push(await oneRep(n, rep));
    const healed = reps.filter((r) => r.healMs !== undefined);
    cells.push({
      n,
      reps,
      healedReps: healed.length,
      medianHealMs: median(healed.map((r) => r.healMs!)),
      medianHealBytesSent: median(reps.map((r) => r.healBytesSent)),
      medianHealModelBytesSent: median(reps.map((r) => r.healModelBytesSent)),
      medianBytesPerDataByte: median(reps.map((r) => r.bytesPerDataByte)),
      medianOfFullStateToAll: median(reps.map((r) => r.ofFullStateToAll)),
      dataBytes: reps[0]?.dataBytes,
    });
    const c = cells[cells.length - 1]!;
    console.log(
      `n=${n}: heal median ${c.medianHealMs} ms over ${c.healedReps}/${REPS}, repair bytes sent ${c.medianHealBytesSent} for ${c.dataBytes} data bytes (${c.medianBytesPerDataByte}x)`,
    );
  }
  const out = {
    bench: 'gossip-store',
    at: new Date().toISOString(),
    settings: { PRELOAD, WRITES, OVERWRITES, VALUE_BYTES, REPS, repairIntervalMs: 1_000 },
    partition:
      'store repair traffic dropped both ways between the halves (POST /v1/store-faults); gossip membership untouched',
    cells,
  };
  mkdirSync('bench-results', { recursive: true });
  const file = join('bench-results', `gossip-store-${out.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

await main();
