/**
 * The closed-loop load generator for the gRPC column: clients speaking etcd's v3 gRPC API
 * (src/server/etcd/grpc-client.ts, from etcd's .proto files) drive etcd and quorate alike.
 * It runs in its own process, like loadgen.ts; grpc.ts runs several of them side by side
 * for one point (the grpc-js client costs more CPU per call than either server's side of
 * it, and one process saturated before etcd did) and merges their latencies.
 *
 * put / get / fill: C clients share one HTTP/2 channel per endpoint (as etcd's clients
 * do); client i starts on endpoint i % N and moves to the next one after a failure (an
 * error status or the client timeout), waiting `backoffMs`. A put is Put{key, value}; a get
 * is a linearizable Range{key}. Latency is one successful call.
 *
 * watch: the fan-out point. `watchers` Watch streams, each on one prefix, spread over
 * `connections` gRPC connections of their own (as that many separate clients would hold
 * them), connection i on endpoint i % N; `clients` closed-loop writers (in the process
 * with `writerProcess`) put to keys under the prefix, each value starting with the epoch
 * time it was sent. Every event delivered to every watcher counts; its latency is its
 * arrival minus that send time (epoch clocks, so comparable across processes). A watcher
 * checks that revisions only grow and counts a cancel; either is reported, never hidden.
 *
 *   tsx bench/kv/grpc-loadgen.ts '<GrpcLoadSpec JSON>'   prints one result JSON line
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { ServiceError } from '@grpc/grpc-js';
import { EtcdGrpcClient } from '../../src/server/etcd/grpc-client.ts';
import type {
  PutRequest,
  RangeRequest,
  WatchRequest,
  WatchResponse,
} from '../../src/server/etcd/types.ts';
import { epochNow, keyName } from './loadgen.ts';

export interface GrpcLoadSpec {
  /** host:port of each member's gRPC API. */
  readonly endpoints: readonly string[];
  readonly op: 'put' | 'get' | 'fill' | 'watch';
  /** Closed-loop clients (writers, for watch) in this process. */
  readonly clients: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly timeoutMs: number;
  readonly backoffMs: number;
  /** watch: Watch streams in this process, and the connections they are spread over. */
  readonly watchers?: number;
  readonly connections?: number;
  /** watch: whether this process runs the writers (one process of a point does). */
  readonly writerProcess?: boolean;
}

export interface GrpcLoadResult {
  /** Successful calls (events delivered, for watch) inside the measured window. */
  readonly ok: number;
  readonly seconds: number;
  /** Latencies (ms, 2 decimals) of what `ok` counts, for the parent to merge. */
  readonly latenciesMs: readonly number[];
  readonly errors: Record<string, number>;
  /** CPU time this load process used (user + system). */
  readonly cpuMs: number;
  /** watch: puts that succeeded inside the window (this process's writers). */
  readonly puts?: number;
}

const CLIENTS_MAX = 1024;
const WATCHERS_MAX = 10_000;
/** How long the watchers may take to be created before the writers start anyway. */
const WATCH_CREATE_WAIT_MS = 10_000;
/** Keys under the watched prefix the writers spread over. */
const WATCH_KEYS = 100;
export const WATCH_PREFIX = 'bench/w/';
/**
 * grpc-js wraps every call in a retrying call that buffers its messages for a transparent
 * retry; the load generator retries by itself (next endpoint after a failure), so it turns
 * that off, and spends less CPU per call. GRPC_LOADGEN_RETRIES=1 keeps it, to compare.
 */
const channelOptions = { 'grpc.enable_retries': process.env.GRPC_LOADGEN_RETRIES === '1' ? 1 : 0 };
const sleep = (ms: number) => new Promise<void>((wake) => setTimeout(wake, ms));
const round2 = (x: number) => Math.round(x * 100) / 100;

function validate(spec: GrpcLoadSpec): void {
  const watch = spec.op === 'watch';
  const min = watch && spec.writerProcess !== true ? 0 : 1;
  if (!Number.isInteger(spec.clients) || spec.clients < min || spec.clients > CLIENTS_MAX) {
    throw new RangeError(`clients must be in ${min}..${CLIENTS_MAX}`);
  }
  if (spec.endpoints.length === 0) throw new RangeError('no endpoints');
  if (watch) {
    const w = spec.watchers ?? 0;
    const c = spec.connections ?? 0;
    if (!Number.isInteger(w) || w < 0 || w > WATCHERS_MAX) {
      throw new RangeError(`watchers must be in 0..${WATCHERS_MAX}`);
    }
    if (w > 0 && (!Number.isInteger(c) || c < 1 || c > w)) {
      throw new RangeError('connections must be in 1..watchers');
    }
  }
}

export async function runGrpcLoad(spec: GrpcLoadSpec): Promise<GrpcLoadResult> {
  validate(spec);
  const cpuBefore = process.cpuUsage();
  const began = performance.now();
  const out = spec.op === 'watch' ? await runWatch(spec) : await runCalls(spec);
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = spec.op === 'fill' ? (performance.now() - began) / 1000 : spec.durationMs / 1000;
  return {
    ...out,
    seconds: round2(seconds),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  };
}

type Counted = Pick<GrpcLoadResult, 'ok' | 'latenciesMs' | 'errors' | 'puts'>;

function tally(errors: Record<string, number>, err: unknown): void {
  const e = err as Partial<ServiceError>;
  const why = `grpc${e.code ?? '?'}:${e.details ?? String(err)}`;
  errors[why] = (errors[why] ?? 0) + 1;
}

async function runCalls(spec: GrpcLoadSpec): Promise<Counted> {
  const channels = spec.endpoints.map((e) => new EtcdGrpcClient(e, { channelOptions }));
  const value = Buffer.from('v'.repeat(spec.valueBytes));
  const measureFrom = performance.now() + spec.warmupMs;
  const stopAt = measureFrom + spec.durationMs;
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let nextFill = 0;
  const refill: number[] = [];
  const nextKey = (): number | undefined => {
    if (spec.op !== 'fill') return Math.floor(Math.random() * spec.keys);
    const k = refill.pop() ?? nextFill++;
    return k < spec.keys ? k : undefined;
  };
  const call = (c: EtcdGrpcClient, k: number) => {
    const key = Buffer.from(keyName(k));
    return spec.op === 'get'
      ? c.unary<RangeRequest, unknown>('KV', 'Range', { key }, spec.timeoutMs)
      : c.unary<PutRequest, unknown>('KV', 'Put', { key, value }, spec.timeoutMs);
  };
  const client = async (id: number) => {
    let at = id % channels.length;
    while (performance.now() < stopAt) {
      const k = nextKey();
      if (k === undefined) return;
      const started = performance.now();
      try {
        await call(channels[at] as EtcdGrpcClient, k);
        const ended = performance.now();
        if (started >= measureFrom && ended <= stopAt) latencies.push(round2(ended - started));
      } catch (err) {
        if (started >= measureFrom) tally(errors, err);
        if (spec.op === 'fill') refill.push(k);
        at = (at + 1) % channels.length;
        await sleep(spec.backoffMs);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.clients }, (_, i) => client(i)));
  for (const c of channels) c.close();
  return { ok: latencies.length, latenciesMs: latencies, errors };
}

/** The first key after every key that starts with `prefix` (etcd's prefix range end). */
function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  const last = end.length - 1;
  end[last] = (end[last] as number) + 1;
  return end;
}

async function runWatch(spec: GrpcLoadSpec): Promise<Counted> {
  const watchers = spec.watchers ?? 0;
  const connections = Array.from(
    { length: Math.min(spec.connections ?? 1, Math.max(1, watchers)) },
    (_, i) =>
      new EtcdGrpcClient(spec.endpoints[i % spec.endpoints.length] as string, {
        ownConnection: true,
        channelOptions,
      }),
  );
  const errors: Record<string, number> = {};
  const latencies: number[] = [];
  let measureFrom = Number.POSITIVE_INFINITY;
  let stopAt = Number.POSITIVE_INFINITY;
  const created: Promise<void>[] = [];
  const streams = Array.from({ length: watchers }, (_, i) => {
    const stream = (connections[i % connections.length] as EtcdGrpcClient).bidi<
      WatchRequest,
      WatchResponse
    >('Watch', 'Watch');
    let lastRevision = 0;
    created.push(
      new Promise<void>((ready) => {
        stream.on('data', (res: WatchResponse) => {
          if (res.created) ready();
          if (res.canceled) {
            const why = `canceled:${res.cancel_reason}`;
            errors[why] = (errors[why] ?? 0) + 1;
          }
          const now = epochNow();
          for (const ev of res.events) {
            const revision = ev.kv.mod_revision;
            if (revision <= lastRevision) errors.reordered = (errors.reordered ?? 0) + 1;
            lastRevision = revision;
            const sentAt = Number(ev.kv.value.subarray(0, 17).toString());
            if (sentAt >= measureFrom && now <= stopAt) latencies.push(round2(now - sentAt));
          }
        });
        stream.on('error', (err: ServiceError) => {
          // Our own cancel at the end is not a failure.
          if (epochNow() < stopAt) tally(errors, err);
          ready();
        });
      }),
    );
    stream.write({
      create_request: { key: Buffer.from(WATCH_PREFIX), range_end: prefixEnd(WATCH_PREFIX) },
    });
    return stream;
  });
  await Promise.race([Promise.all(created), sleep(WATCH_CREATE_WAIT_MS)]);
  measureFrom = epochNow() + spec.warmupMs;
  stopAt = measureFrom + spec.durationMs;
  let puts = 0;
  if (spec.writerProcess === true) {
    const writers = spec.endpoints.map((e) => new EtcdGrpcClient(e, { channelOptions }));
    const writer = async (id: number) => {
      let at = id % writers.length;
      while (epochNow() < stopAt) {
        const key = Buffer.from(`${WATCH_PREFIX}k${Math.floor(Math.random() * WATCH_KEYS)}`);
        const sentAt = epochNow();
        // A fixed-width decimal epoch time (17 characters), padded to the value size.
        const stamp = sentAt.toFixed(3).padStart(17, '0');
        const value = Buffer.from(stamp.padEnd(Math.max(17, spec.valueBytes), 'v'));
        try {
          await (writers[at] as EtcdGrpcClient).unary<PutRequest, unknown>(
            'KV',
            'Put',
            { key, value },
            spec.timeoutMs,
          );
          if (sentAt >= measureFrom && epochNow() <= stopAt) puts++;
        } catch (err) {
          if (sentAt >= measureFrom) tally(errors, err);
          at = (at + 1) % writers.length;
          await sleep(spec.backoffMs);
        }
      }
    };
    await Promise.all(Array.from({ length: spec.clients }, (_, i) => writer(i)));
    for (const w of writers) w.close();
  } else {
    await sleep(Math.max(0, stopAt - epochNow()));
  }
  // Events in flight at the end still arrive; give them a moment, then hang up.
  await sleep(200);
  for (const s of streams) s.cancel();
  for (const c of connections) c.close();
  return {
    ok: latencies.length,
    latenciesMs: latencies,
    errors,
    ...(spec.writerProcess === true ? { puts } : {}),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as GrpcLoadSpec;
  const result = await runGrpcLoad(spec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
