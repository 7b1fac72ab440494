import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrpcLoadSpec, runGrpcLoad } from '../../bench/kv/grpc-loadgen.ts';
import { createEtcdServer, type EtcdServer } from '../../src/server/etcd/server.ts';
import { MemoryEngine } from '../../src/server/testing/memory-engine.ts';

// The gRPC load generator against one in-process etcd API server over a memory engine: what
// it counts must be what happened (every event to every watcher once, every call once).
let server: EtcdServer;
let endpoint: string;

beforeAll(async () => {
  server = createEtcdServer({
    engine: new MemoryEngine({ id: 1 }),
    clusterSecret: 'a cluster secret of some length',
    version: '0.0.0-test',
  });
  endpoint = new URL(await server.listen('127.0.0.1', 0)).host;
});

afterAll(() => server.close());

const base: Omit<GrpcLoadSpec, 'op' | 'clients'> = {
  endpoints: [],
  warmupMs: 100,
  durationMs: 700,
  keys: 50,
  valueBytes: 100,
  timeoutMs: 2000,
  backoffMs: 10,
};

describe('grpc-loadgen', () => {
  it('counts each successful put and range once, with a latency each', async () => {
    for (const op of ['put', 'get'] as const) {
      const r = await runGrpcLoad({ ...base, endpoints: [endpoint], op, clients: 4 });
      expect(r.errors).toEqual({});
      expect(r.ok).toBeGreaterThan(0);
      expect(r.latenciesMs).toHaveLength(r.ok);
      expect(Math.min(...r.latenciesMs)).toBeGreaterThan(0);
    }
  });

  it('watch: every put reaches every watcher once, spread over several connections', async () => {
    const watchers = 6;
    const r = await runGrpcLoad({
      ...base,
      endpoints: [endpoint],
      op: 'watch',
      clients: 1,
      watchers,
      connections: 3,
      writerProcess: true,
    });
    expect(r.errors).toEqual({});
    const puts = r.puts ?? 0;
    expect(puts).toBeGreaterThan(5);
    // At the window's edges one put may be counted on one side and its events on the other.
    expect(r.ok).toBeGreaterThanOrEqual(watchers * (puts - 1));
    expect(r.ok).toBeLessThanOrEqual(watchers * (puts + 1));
    expect(r.latenciesMs).toHaveLength(r.ok);
    expect(Math.min(...r.latenciesMs)).toBeGreaterThanOrEqual(0);
  });

  it('refuses a watch spec with more connections than watchers', async () => {
    await expect(
      runGrpcLoad({
        ...base,
        endpoints: [endpoint],
        op: 'watch',
        clients: 1,
        watchers: 2,
        connections: 3,
        writerProcess: true,
      }),
    ).rejects.toThrow(RangeError);
  });
});
