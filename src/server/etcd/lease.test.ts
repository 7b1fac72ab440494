import { type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../testing/memory-engine.ts';
import { EtcdGrpcClient } from './grpc-client.ts';
import { createEtcdServer, type EtcdServer } from './server.ts';
import type {
  LeaseGrantResponse,
  LeaseIdRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeResponse,
} from './types.ts';

/**
 * etcd's Lease service over one in-memory engine (the state machine, no lessor: expiry on
 * the leader's clock is tested in src/replica/lessor.test.ts, the simulator and
 * test/e2e/lease.test.ts). Answers and errors as etcd gives them.
 */
let engine: MemoryEngine;
let server: EtcdServer;
let client: EtcdGrpcClient;
const b = (s: string) => Buffer.from(s);

async function failure(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('the call succeeded');
}

beforeAll(async () => {
  engine = new MemoryEngine({ id: 3 });
  server = createEtcdServer({ engine, clusterSecret: 'a lease test secret', version: '0.0.0' });
  client = new EtcdGrpcClient(await server.listen('127.0.0.1', 0));
});
afterAll(async () => {
  client.close();
  await server.close();
});

const grant = (TTL: number, ID = 0) =>
  client.unary<{ TTL: number; ID: number }, LeaseGrantResponse>('Lease', 'LeaseGrant', { TTL, ID });
const ttl = (ID: number, keys = false) =>
  client.unary<{ ID: number; keys: boolean }, LeaseTimeToLiveResponse>('Lease', 'LeaseTimeToLive', {
    ID,
    keys,
  });

describe('etcd Lease service', () => {
  it('grants (ID 0 picks one), attaches keys by Put, tells TTL and keys, and revokes with its keys', async () => {
    const g = await grant(30);
    expect(g).toMatchObject({ ID: 1, TTL: 30, error: '' });
    const mine = await grant(10, 77);
    expect(mine).toMatchObject({ ID: 77, TTL: 10 });
    await client.unary<object, PutResponse>('KV', 'Put', {
      key: b('l/a'),
      value: b('1'),
      lease: 77,
    });
    await client.unary<object, PutResponse>('KV', 'Put', {
      key: b('l/b'),
      value: b('2'),
      lease: 77,
    });
    const t = await ttl(77, true);
    expect(t).toMatchObject({ ID: 77, grantedTTL: 10 });
    expect(t.keys.map(String)).toEqual(['l/a', 'l/b']);
    expect((await ttl(77)).keys).toEqual([]);
    const leases = await client.unary<object, LeaseLeasesResponse>('Lease', 'LeaseLeases', {});
    expect(leases.leases.map((l) => l.ID)).toEqual([1, 77]);
    await client.unary('Lease', 'LeaseRevoke', { ID: 77 });
    const after = await client.unary<object, RangeResponse>('KV', 'Range', {
      key: b('l/'),
      range_end: b('l0'),
    });
    expect(after.kvs).toEqual([]);
    // etcd answers a lease that is gone with TTL -1, not an error.
    expect(await ttl(77)).toMatchObject({ ID: 77, TTL: -1, grantedTTL: 0 });
  });

  it('refuses as etcd does: a lease that exists, one not found, a TTL too large', async () => {
    await grant(5, 500);
    expect(await failure(grant(5, 500))).toEqual({
      code: status.FAILED_PRECONDITION,
      details: 'etcdserver: lease already exists',
    });
    expect(await failure(client.unary('Lease', 'LeaseRevoke', { ID: 501 }))).toEqual({
      code: status.NOT_FOUND,
      details: 'etcdserver: requested lease not found',
    });
    expect(await failure(grant(9_000_000_001))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'etcdserver: too large lease TTL',
    });
    expect(
      await failure(client.unary('KV', 'Put', { key: b('k'), value: b('v'), lease: 501 })),
    ).toEqual({ code: status.NOT_FOUND, details: 'etcdserver: requested lease not found' });
  });

  it('answers every keep-alive on the stream in order: the TTL, or 0 for a lease not found', async () => {
    await grant(7, 900);
    const stream = client.bidi<LeaseIdRequest, LeaseKeepAliveResponse>('Lease', 'LeaseKeepAlive');
    const answers: LeaseKeepAliveResponse[] = [];
    const got = new Promise<void>((resolve, reject) => {
      stream.on('data', (r: LeaseKeepAliveResponse) => {
        answers.push(r);
        if (answers.length === 3) resolve();
      });
      stream.on('error', reject);
    });
    stream.write({ ID: 900 });
    stream.write({ ID: 901 });
    stream.write({ ID: 900 });
    await got;
    expect(answers.map((a) => [a.ID, a.TTL])).toEqual([
      [900, 7],
      [901, 0],
      [900, 7],
    ]);
    stream.end();
  });
});
