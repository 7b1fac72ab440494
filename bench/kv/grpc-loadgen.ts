/**
 * The closed-loop load generator for the gRPC column: one client speaking etcd's v3 gRPC API
 * (src/server/etcd/grpc-client.ts, from etcd's .proto files) drives etcd and quorate alike.
 * It runs in its own process, like loadgen.ts.
 *
 * C clients share one HTTP/2 channel per endpoint (as etcd's clients do); client i starts on
 * endpoint i % N and moves to the next one after a failure (an error status or the client
 * timeout), waiting `backoffMs`. A put is Put{key, value}; a get is a linearizable
 * Range{key}. Latency is one successful call.
 *
 *   tsx bench/kv/grpc-loadgen.ts '<GrpcLoadSpec JSON>'   prints one result JSON line
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { ServiceError } from '@grpc/grpc-js';
import { EtcdGrpcClient } from '../../src/server/etcd/grpc-client.ts';
import type { PutRequest, RangeRequest } from '../../src/server/etcd/types.ts';
import { keyName } from './loadgen.ts';
import { percentile } from './stats.ts';

export interface GrpcLoadSpec {
  /** host:port of each member's gRPC API. */
  readonly endpoints: readonly string[];
  readonly op: 'put' | 'get' | 'fill';
  readonly clients: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly keys: number;
  readonly valueBytes: number;
  readonly timeoutMs: number;
  readonly backoffMs: number;
}

export interface GrpcLoadResult {
  readonly ok: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: Record<string, number>;
  /** CPU time this load process used (user + system). */
  readonly cpuMs: number;
}

const CLIENTS_MAX = 1024;
const sleep = (ms: number) => new Promise<void>((wake) => setTimeout(wake, ms));

export async function runGrpcLoad(spec: GrpcLoadSpec): Promise<GrpcLoadResult> {
  if (!Number.isInteger(spec.clients) || spec.clients < 1 || spec.clients > CLIENTS_MAX) {
    throw new RangeError(`clients must be in 1..${CLIENTS_MAX}`);
  }
  if (spec.endpoints.length === 0) throw new RangeError('no endpoints');
  const channels = spec.endpoints.map((e) => new EtcdGrpcClient(e));
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
        if (started >= measureFrom && ended <= stopAt) latencies.push(ended - started);
      } catch (err) {
        const why = `grpc${(err as ServiceError).code}:${(err as ServiceError).details ?? ''}`;
        if (started >= measureFrom) errors[why] = (errors[why] ?? 0) + 1;
        if (spec.op === 'fill') refill.push(k);
        at = (at + 1) % channels.length;
        await sleep(spec.backoffMs);
      }
    }
  };
  const cpuBefore = process.cpuUsage();
  const began = performance.now();
  await Promise.all(Array.from({ length: spec.clients }, (_, i) => client(i)));
  for (const c of channels) c.close();
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = spec.op === 'fill' ? (performance.now() - began) / 1000 : spec.durationMs / 1000;
  const sorted = Float64Array.from(latencies).sort();
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    ok: latencies.length,
    seconds: round(seconds),
    opsPerSec: round(latencies.length / seconds),
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    errors,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as GrpcLoadSpec;
  const result = await runGrpcLoad(spec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
