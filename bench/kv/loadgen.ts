/**
 * The one closed-loop load generator for both systems. It runs in its own process (run.ts
 * spawns it) so it does not share an event loop with any server.
 *
 * C clients; client i starts on endpoint i % N. On any failure (connection error, non-200,
 * or the client timeout) it moves to the next endpoint, waits `backoffMs` and sends a new
 * request. Latency is one successful HTTP request, send to full response. Requests issued
 * during the warm-up are not counted.
 *
 *   tsx bench/kv/loadgen.ts '<LoadSpec JSON>'   prints one LoadResult JSON line
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { type Adapter, adapterFor, type HttpCall, type SystemName } from './adapters.ts';
import { percentile } from './stats.ts';

export interface LoadSpec {
  readonly system: SystemName;
  readonly endpoints: readonly string[];
  /** `fill` writes every key once (for reads), then stops. */
  readonly op: 'put' | 'get' | 'fill';
  readonly clients: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly timeoutMs: number;
  readonly backoffMs: number;
  /** Keep the completion time of every success (for the failover window). */
  readonly keepCompletions: boolean;
}

export interface LoadResult {
  readonly ok: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  /** The tail's shape, for reading the run (the targets are on p99). */
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly errors: Record<string, number>;
  /** CPU time this load process used (user + system). */
  readonly cpuMs: number;
  /** Epoch ms (performance.timeOrigin based, comparable across processes) of each success. */
  readonly completions: readonly number[];
}

interface Outcome {
  readonly ok: boolean;
  readonly why: string;
}

const CLIENTS_MAX = 1024;
const KEYS_MAX = 1_000_000;

export function validateSpec(spec: LoadSpec): void {
  const positive = (name: string, v: number, max: number) => {
    if (!Number.isSafeInteger(v) || v < 1 || v > max) {
      throw new RangeError(`${name} must be an integer in 1..${max}, got ${v}`);
    }
  };
  positive('clients', spec.clients, CLIENTS_MAX);
  positive('keys', spec.keys, KEYS_MAX);
  positive('valueBytes', spec.valueBytes, 1024 * 1024);
  positive('durationMs', spec.durationMs, 3_600_000);
  positive('timeoutMs', spec.timeoutMs, 60_000);
  if (spec.endpoints.length === 0) throw new RangeError('no endpoints');
  if (spec.warmupMs < 0 || spec.backoffMs < 0) throw new RangeError('negative warm-up or backoff');
}

export const keyName = (i: number): string => `bench/k${String(i).padStart(8, '0')}`;
/** Milliseconds since the epoch with sub-ms resolution, comparable across processes. */
export const epochNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((wake) => setTimeout(wake, ms));

/** Sends one request and reads the whole answer, or gives up after `timeoutMs`. */
function send(agent: http.Agent, base: URL, call: HttpCall, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const headers: Record<string, string | number> = { ...call.headers };
    if (call.body !== undefined) headers['content-length'] = Buffer.byteLength(call.body);
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: call.path,
        method: call.method,
        agent,
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          if (res.statusCode === 200) return finish({ ok: true, why: '' });
          finish({ ok: false, why: `http${res.statusCode}:${errorCode(Buffer.concat(chunks))}` });
        });
        res.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, why: e.code ?? 'read' }));
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error('client-timeout'));
      finish({ ok: false, why: 'client-timeout' });
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, why: e.code ?? e.message }));
    req.end(call.body);
  });
}

/** The error code in either system's error body, for the error tally. */
function errorCode(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString()) as { error?: unknown; message?: unknown };
    const error = parsed.error;
    if (typeof error === 'object' && error !== null && 'code' in error) return String(error.code);
    return String(error ?? parsed.message ?? '');
  } catch {
    return '';
  }
}

/** Runs the closed loop described by `spec` and summarises it. */
export async function runLoad(spec: LoadSpec, sessionBase: number): Promise<LoadResult> {
  validateSpec(spec);
  const adapter: Adapter = adapterFor(spec.system, sessionBase);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const bases = spec.endpoints.map((e) => new URL(e));
  const value = 'v'.repeat(spec.valueBytes);
  const measureFrom = performance.now() + spec.warmupMs;
  const stopAt = measureFrom + spec.durationMs;
  const latencies: number[] = [];
  const completions: number[] = [];
  const errors: Record<string, number> = {};
  let nextFill = 0;
  const refill: number[] = [];

  const nextKey = (): number | undefined => {
    if (spec.op !== 'fill') return Math.floor(Math.random() * spec.keys);
    const k = refill.pop() ?? nextFill++;
    return k < spec.keys ? k : undefined;
  };

  const client = async (id: number) => {
    let at = id % bases.length;
    let seq = 0;
    while (performance.now() < stopAt) {
      const k = nextKey();
      if (k === undefined) return;
      const call =
        spec.op === 'get' ? adapter.get(keyName(k)) : adapter.put(keyName(k), value, id, ++seq);
      const started = performance.now();
      const outcome = await send(agent, bases[at] as URL, call, spec.timeoutMs);
      const ended = performance.now();
      if (outcome.ok) {
        if (started >= measureFrom && ended <= stopAt) latencies.push(ended - started);
        if (spec.keepCompletions) completions.push(performance.timeOrigin + ended);
        continue;
      }
      if (started >= measureFrom) errors[outcome.why] = (errors[outcome.why] ?? 0) + 1;
      if (spec.op === 'fill') refill.push(k);
      at = (at + 1) % bases.length;
      await sleep(spec.backoffMs);
    }
  };

  const cpuBefore = process.cpuUsage();
  const began = performance.now();
  await Promise.all(Array.from({ length: spec.clients }, (_, i) => client(i)));
  agent.destroy();
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = spec.op === 'fill' ? (performance.now() - began) / 1000 : spec.durationMs / 1000;
  const sorted = Float64Array.from(latencies).sort();
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    ok: latencies.length,
    seconds: round(seconds),
    opsPerSec: round(latencies.length / seconds),
    p50Ms: round(percentile(sorted, 50)),
    p90Ms: round(percentile(sorted, 90)),
    p99Ms: round(percentile(sorted, 99)),
    p999Ms: round(percentile(sorted, 99.9)),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
    errors,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    completions,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  const sessionBase = 1 + Math.floor(Math.random() * 2 ** 40) * 1024;
  process.stdout.write(`${JSON.stringify({ startedAt: epochNow() })}\n`);
  const result = await runLoad(spec, sessionBase);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
