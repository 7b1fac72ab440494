import { type ClientDuplexStream, type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KvCommand, KvResult } from '../../kv/machine.ts';
import { MemoryEngine } from '../testing/memory-engine.ts';
import { EtcdGrpcClient, type Sent } from './grpc-client.ts';
import { clusterIdOf, createEtcdServer, type EtcdServer } from './server.ts';
import type {
  DeleteRangeRequest,
  DeleteRangeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  StatusResponse,
  TxnRequest,
  TxnResponse,
  WatchRequest,
  WatchResponse,
} from './types.ts';

/** A MemoryEngine that lets one other write land just before the next one (a racing client). */
class RacingEngine extends MemoryEngine {
  private racer: KvCommand | undefined;
  raceNextWrite(cmd: KvCommand): void {
    this.racer = cmd;
  }
  override async write(cmd: KvCommand): Promise<KvResult> {
    const racer = this.racer;
    this.racer = undefined;
    if (racer !== undefined) await super.write(racer);
    return super.write(cmd);
  }
}

const b = (s: string) => Buffer.from(s);
const SECRET = 'a cluster secret of some length';

let engine: RacingEngine;
let server: EtcdServer;
let client: EtcdGrpcClient;

async function start(
  limits?: { changesMax: number },
  backlogMax = 1000,
  rangeKeysMax?: number,
): Promise<void> {
  engine = new RacingEngine({
    id: 7,
    ...(limits === undefined ? {} : { limits: { sessionsMax: 10, listMax: 1000, ...limits } }),
  });
  server = createEtcdServer({
    engine,
    clusterSecret: SECRET,
    version: '0.0.0-test',
    watch: { backlogMax },
    ...(rangeKeysMax === undefined ? {} : { rangeKeysMax }),
  });
  client = new EtcdGrpcClient(await server.listen('127.0.0.1', 0));
}

async function stop(): Promise<void> {
  client.close();
  await server.close();
}

const range = (r: Sent<RangeRequest>) =>
  client.unary<RangeRequest, RangeResponse>('KV', 'Range', r);
const put = (r: Sent<PutRequest>) => client.unary<PutRequest, PutResponse>('KV', 'Put', r);
const del = (r: Sent<DeleteRangeRequest>) =>
  client.unary<DeleteRangeRequest, DeleteRangeResponse>('KV', 'DeleteRange', r);
const txn = (r: Sent<TxnRequest>) => client.unary<TxnRequest, TxnResponse>('KV', 'Txn', r);

async function failure(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('the call succeeded');
}

const texts = (r: RangeResponse) => r.kvs.map((kv) => `${kv.key}=${kv.value}`);

describe('etcd KV over the engine', () => {
  beforeAll(() => start());
  afterAll(() => stop());

  it('puts and ranges one key, a prefix, with limit, keys_only, count_only and sort', async () => {
    const first = await put({ key: b('app/b'), value: b('2') });
    expect(first.header).toMatchObject({
      member_id: 7,
      revision: 1,
      cluster_id: clusterIdOf(SECRET),
    });
    await put({ key: b('app/a'), value: b('1') });
    await put({ key: b('apple'), value: b('x') });
    const one = await range({ key: b('app/a') });
    expect(one.kvs).toMatchObject([{ version: 1, mod_revision: 2, create_revision: 2 }]);
    expect(one).toMatchObject({ count: 1, more: false, header: { revision: 3 } });
    const prefix = await range({ key: b('app/'), range_end: b('app0') });
    expect(texts(prefix)).toEqual(['app/a=1', 'app/b=2']);
    const limited = await range({ key: b('app/'), range_end: b('app0'), limit: 1 });
    expect(limited).toMatchObject({ count: 2, more: true });
    expect(texts(limited)).toEqual(['app/a=1']);
    const keysOnly = await range({ key: b('app/'), range_end: b('app0'), keys_only: true });
    expect(keysOnly.kvs.map((kv) => kv.value.length)).toEqual([0, 0]);
    const counted = await range({ key: b('app/'), range_end: b('app0'), count_only: true });
    expect(counted).toMatchObject({ count: 2, kvs: [] });
    const all = await range({ key: b('\0'), range_end: b('\0'), sort_order: 2, sort_target: 0 });
    expect(texts(all)).toEqual(['apple=x', 'app/b=2', 'app/a=1']);
    const byMod = await range({ key: b('\0'), range_end: b('\0'), sort_order: 1, sort_target: 3 });
    expect(texts(byMod)).toEqual(['app/b=2', 'app/a=1', 'apple=x']);
    const serializable = await range({ key: b('apple'), serializable: true });
    expect(texts(serializable)).toEqual(['apple=x']);
  });

  it('answers etcd errors with etcd codes and messages; a lease id reaches the store', async () => {
    expect(await failure(range({}))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'etcdserver: key is not provided',
    });
    expect(await failure(range({ key: b('app/a'), revision: 1000 }))).toEqual({
      code: status.OUT_OF_RANGE,
      details: 'etcdserver: mvcc: required revision is a future revision',
    });
    // No lease 5 was granted: the store's check, not the edge's, answers.
    const writes = engine.writes.length;
    expect(await failure(put({ key: b('k'), value: b('v'), lease: 5 }))).toEqual({
      code: status.NOT_FOUND,
      details: 'etcdserver: requested lease not found',
    });
    expect(engine.writes.slice(writes).map((c) => c.op)).toMatchObject([
      { f: 'asUser', op: { f: 'put', key: 'k', lease: 5 } },
    ]);
    expect(await failure(put({ key: b('absent'), value: b(''), ignore_value: true }))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'etcdserver: key not found',
    });
    expect(await failure(put({ key: b('app/a'), value: b('v'), ignore_value: true }))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'etcdserver: value is provided',
    });
  });

  it('ranges over any [key, range_end), from a key, with create filters and create sort', async () => {
    await put({ key: b('r/c'), value: b('3') });
    await put({ key: b('r/a'), value: b('1') });
    await put({ key: b('r/b'), value: b('2') });
    await put({ key: b('r/a'), value: b('1+') });
    const span = await range({ key: b('r/a'), range_end: b('r/c') });
    expect(texts(span)).toEqual(['r/a=1+', 'r/b=2']);
    const fromKey = await range({ key: b('r/b'), range_end: b('\0') });
    expect(texts(fromKey)).toEqual(['r/b=2', 'r/c=3']);
    const byCreate = await range({
      key: b('r/'),
      range_end: b('r0'),
      sort_order: 1,
      sort_target: 2,
    });
    expect(texts(byCreate)).toEqual(['r/c=3', 'r/a=1+', 'r/b=2']);
    const created = byCreate.kvs.map((kv) => kv.create_revision);
    const [c, a] = created as [number, number, number];
    // r/a was written twice: create_revision stays that of its first put, mod moves on.
    expect(byCreate.kvs[1]).toMatchObject({ version: 2, create_revision: a });
    expect(byCreate.kvs[1]?.mod_revision).toBeGreaterThan(a);
    const newer = await range({ key: b('r/'), range_end: b('r0'), min_create_revision: a });
    expect(texts(newer)).toEqual(['r/a=1+', 'r/b=2']);
    const older = await range({ key: b('r/'), range_end: b('r0'), max_create_revision: c });
    expect(texts(older)).toEqual(['r/c=3']);
    expect(older.count).toBe(3); // count is before the filters, as etcd's
  });

  it('reads at a past revision; after Compact, below it is refused as compacted', async () => {
    const v1 = await put({ key: b('h'), value: b('old') });
    const v2 = await put({ key: b('h'), value: b('new'), prev_kv: true });
    expect(v2.prev_kv).toMatchObject({ value: b('old'), version: 1 });
    await del({ key: b('h') });
    const past = await range({ key: b('h'), revision: v1.header.revision });
    expect(texts(past)).toEqual(['h=old']);
    expect(past.header.revision).toBeGreaterThan(v2.header.revision); // the store's current one
    expect(texts(await range({ key: b('h'), revision: v2.header.revision }))).toEqual(['h=new']);
    expect((await range({ key: b('h') })).kvs).toEqual([]);
    const compacted = await client.unary<{ revision: number; physical: boolean }, RangeResponse>(
      'KV',
      'Compact',
      { revision: v2.header.revision, physical: true },
    );
    expect(compacted.header.revision).toBe((await range({ key: b('h') })).header.revision);
    expect(await failure(range({ key: b('h'), revision: v1.header.revision }))).toEqual({
      code: status.OUT_OF_RANGE,
      details: 'etcdserver: mvcc: required revision has been compacted',
    });
    // The compaction revision itself is still readable, as in etcd.
    expect(texts(await range({ key: b('h'), revision: v2.header.revision }))).toEqual(['h=new']);
    expect(await failure(client.unary('KV', 'Compact', { revision: v1.header.revision }))).toEqual({
      code: status.OUT_OF_RANGE,
      details: 'etcdserver: mvcc: required revision has been compacted',
    });
  });

  it('puts with ignore_value keep the value and bump the version', async () => {
    await put({ key: b('iv'), value: b('kept') });
    const again = await put({ key: b('iv'), value: b(''), ignore_value: true, prev_kv: true });
    expect(again.prev_kv).toMatchObject({ value: b('kept'), version: 1 });
    expect((await range({ key: b('iv') })).kvs).toMatchObject([{ value: b('kept'), version: 2 }]);
    const lease = await put({ key: b('iv'), value: b('other'), ignore_lease: true });
    expect(lease.header.revision).toBeGreaterThan(again.header.revision);
    expect(texts(await range({ key: b('iv') }))).toEqual(['iv=other']);
  });

  it('stores keys and values that are not UTF-8 byte-exact, and finds them by byte prefix', async () => {
    const key = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    const value = Buffer.from([0x00, 0xc3, 0x28, 0xff]);
    await put({ key, value });
    const got = await range({ key });
    expect(got.kvs.map((kv) => [Buffer.from(kv.key), Buffer.from(kv.value)])).toEqual([
      [key, value],
    ]);
    const byPrefix = await range({ key: Buffer.from([0xff]), range_end: Buffer.from([0x00]) });
    expect(byPrefix.kvs.map((kv) => Buffer.from(kv.key))).toContainEqual(key);
  });

  it('gives the exact prev_kv of a put even when another write raced in before it', async () => {
    await put({ key: b('p'), value: b('one') });
    const plain = await put({ key: b('p'), value: b('two'), prev_kv: true });
    expect(plain.prev_kv).toMatchObject({ value: b('one'), version: 1 });
    // Between this put's read and its write another client writes 'raced': that is the prev.
    engine.raceNextWrite({ session: 0, seq: 0, op: { f: 'put', key: 'p', value: 'raced' } });
    const raced = await put({ key: b('p'), value: b('three'), prev_kv: true });
    expect(raced.prev_kv).toMatchObject({ value: b('raced'), version: 3 });
    expect(raced.prev_kv?.mod_revision).toBe((raced.header.revision as number) - 1);
  });

  it('deletes one key or a prefix, with prev_kv', async () => {
    await put({ key: b('d/1'), value: b('a') });
    await put({ key: b('d/2'), value: b('b') });
    const one = await del({ key: b('d/1'), prev_kv: true });
    expect(one).toMatchObject({ deleted: 1, prev_kvs: [{ value: b('a') }] });
    const none = await del({ key: b('d/1'), prev_kv: true });
    expect(none).toMatchObject({ deleted: 0, prev_kvs: [] });
    await put({ key: b('d/3'), value: b('c') });
    const prefix = await del({ key: b('d/'), range_end: b('d0'), prev_kv: true });
    expect(prefix.deleted).toBe(2);
    // One atomic delete: both keys went at one revision, the header's.
    const at = prefix.header.revision;
    expect(texts(await range({ key: b('d/'), range_end: b('d0'), revision: at - 1 }))).toEqual([
      'd/2=b',
      'd/3=c',
    ]);
    expect(prefix.prev_kvs.map((kv) => kv.value.toString())).toEqual(['b', 'c']);
    expect((await range({ key: b('d/'), range_end: b('d0') })).count).toBe(0);
  });

  it('runs a txn guarding a put with a compare (cas), and answers the failure branch', async () => {
    await put({ key: b('t'), value: b('v1') });
    const compare = [{ key: b('t'), target: 3, result: 0, value: b('v1') }];
    const ok = await txn({
      compare,
      success: [{ request_put: { key: b('t'), value: b('v2') } }],
      failure: [{ request_range: { key: b('t') } }],
    });
    expect(ok.succeeded).toBe(true);
    const failed = await txn({
      compare,
      success: [{ request_put: { key: b('t'), value: b('v3') } }],
      failure: [{ request_range: { key: b('t') } }],
    });
    expect(failed.succeeded).toBe(false);
    expect(failed.responses[0]?.response_range?.kvs[0]?.value.toString()).toBe('v2');
    const created = await txn({
      compare: [{ key: b('fresh'), target: 1, result: 0, create_revision: 0 }],
      success: [{ request_put: { key: b('fresh'), value: b('x') } }],
    });
    expect(created.succeeded).toBe(true);
    const readOnly = await txn({
      compare: [{ key: b('t'), target: 0, result: 1, version: 1 }],
      success: [{ request_range: { key: b('t') } }],
      failure: [],
    });
    expect(readOnly).toMatchObject({
      succeeded: true,
      responses: [{ response_range: { count: 1 } }],
    });
  });

  it('runs multi-key txns with mod, create and lease compares, nested, at one revision', async () => {
    const t = (await range({ key: b('t') })).kvs[0];
    if (t === undefined) throw new Error('the txn test before this one put t');
    const multi = await txn({
      compare: [
        { key: b('t'), target: 2, result: 0, mod_revision: t.mod_revision },
        { key: b('t'), target: 1, result: 0, create_revision: t.create_revision },
        { key: b('t'), target: 4, result: 0, lease: 0 },
      ],
      success: [
        { request_put: { key: b('m/1'), value: b('a') } },
        { request_put: { key: b('m/2'), value: b('b'), prev_kv: true } },
        {
          request_txn: {
            compare: [{ key: b('m/3'), target: 0, result: 0, version: 0 }],
            success: [{ request_range: { key: b('m/'), range_end: b('m0') } }],
          },
        },
      ],
    });
    expect(multi.succeeded).toBe(true);
    const at = multi.header.revision;
    expect(multi.responses[0]?.response_put?.header.revision).toBe(at);
    expect(multi.responses[1]?.response_put?.header.revision).toBe(at);
    // The nested txn's range sees the writes before it in the same txn.
    const nested = multi.responses[2]?.response_txn;
    expect(nested?.succeeded).toBe(true);
    expect(nested?.responses[0]?.response_range?.kvs.map((kv) => kv.mod_revision)).toEqual([
      at,
      at,
    ]);
    // A stale compare takes the failure branch and writes nothing.
    const stale = await txn({
      compare: [{ key: b('t'), target: 2, result: 2, mod_revision: t.mod_revision }],
      success: [{ request_delete_range: { key: b('m/'), range_end: b('m0') } }],
      failure: [],
    });
    expect(stale).toMatchObject({ succeeded: false, responses: [], header: { revision: at } });
    expect(
      await failure(
        txn({
          success: [
            { request_put: { key: b('m/1'), value: b('x') } },
            { request_put: { key: b('m/1'), value: b('y') } },
          ],
        }),
      ),
    ).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'etcdserver: duplicate key given in txn request',
    });
  });

  it('maps refusals to etcd errors: no leader, too many requests, timed out', async () => {
    engine.setMode({ kind: 'follower', leader: 0 });
    expect(await failure(put({ key: b('k'), value: b('v') }))).toEqual({
      code: status.UNAVAILABLE,
      details: 'etcdserver: no leader',
    });
    engine.setMode({ kind: 'overloaded' });
    expect(await failure(range({ key: b('k') }))).toEqual({
      code: status.RESOURCE_EXHAUSTED,
      details: 'etcdserver: too many requests',
    });
    engine.setMode({ kind: 'unavailable' });
    expect(await failure(put({ key: b('k'), value: b('v') }))).toEqual({
      code: status.UNAVAILABLE,
      details: 'etcdserver: request timed out',
    });
    engine.setMode({ kind: 'leader' });
  });

  it('serves Status, MemberList and Auth status; refuses the rest', async () => {
    const s = await client.unary<object, StatusResponse>('Maintenance', 'Status', {});
    expect(s).toMatchObject({ leader: 7, raftTerm: 1, version: '3.5.0-quorate.0.0.0-test' });
    const members = await client.unary<object, { members: { ID: number }[] }>(
      'Cluster',
      'MemberList',
      {},
    );
    expect(members.members.map((m) => m.ID)).toEqual([7]);
    expect(await client.unary('Auth', 'AuthStatus', {})).toMatchObject({ enabled: false });
    expect(await failure(client.unary('Cluster', 'MemberRemove', { ID: 99 }))).toEqual({
      code: status.NOT_FOUND,
      details: 'etcdserver: member not found',
    });
  });
});

describe('etcd KV ranges larger than rangeKeysMax', () => {
  afterEach(() => stop());

  it('pages them at one revision and sorts and limits the whole, as one read would', async () => {
    await start(undefined, 1000, 2);
    const reads: unknown[] = [];
    const read = engine.read.bind(engine);
    engine.read = (op, consistency) => {
      reads.push(op);
      return read(op, consistency);
    };
    for (const k of ['e', 'a', 'd', 'b', 'c']) await put({ key: b(`pg/${k}`), value: b(k) });
    const all = await range({ key: b('pg/'), range_end: b('pg0') });
    expect(texts(all)).toEqual(['pg/a=a', 'pg/b=b', 'pg/c=c', 'pg/d=d', 'pg/e=e']);
    expect(all).toMatchObject({ count: 5, more: false, header: { revision: 5 } });
    expect(reads).toHaveLength(3); // pages of 2, 2 and 1
    expect(reads.slice(1)).toMatchObject([
      { key: 'pg/b\0', revision: 5, limit: 2 },
      { key: 'pg/d\0', revision: 5, limit: 2 },
    ]);
    const top = await range({
      key: b('pg/'),
      range_end: b('pg0'),
      limit: 3,
      sort_order: 2,
      sort_target: 4,
    });
    expect(texts(top)).toEqual(['pg/e=e', 'pg/d=d', 'pg/c=c']);
    expect(top).toMatchObject({ count: 5, more: true });
    // A limit within rangeKeysMax is one read, sorted and cut by the store.
    reads.length = 0;
    const two = await range({ key: b('pg/'), range_end: b('pg0'), limit: 2, sort_order: 2 });
    expect(texts(two)).toEqual(['pg/e=e', 'pg/d=d']);
    expect(reads).toHaveLength(1);
  });
});

type WatchStream = ClientDuplexStream<Sent<WatchRequest>, WatchResponse>;

function collect(stream: WatchStream): WatchResponse[] {
  const got: WatchResponse[] = [];
  stream.on('data', (r: WatchResponse) => got.push(r));
  stream.on('error', () => {});
  return got;
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('etcd Watch over the change feed', () => {
  afterEach(() => stop());

  it('serves many watches on one stream, from a revision, in order, until cancelled', async () => {
    await start();
    await put({ key: b('w/a'), value: b('1') });
    const stream = client.bidi<WatchRequest, WatchResponse>('Watch', 'Watch');
    const got = collect(stream);
    stream.write({
      create_request: { key: b('w/'), range_end: b('w0'), start_revision: 1, watch_id: 1 },
    });
    stream.write({ create_request: { key: b('w/b'), watch_id: 2, filters: [1] } });
    await until('two created', () =>
      got.filter((r) => r.created).length === 2 ? true : undefined,
    );
    await put({ key: b('w/b'), value: b('2') });
    await del({ key: b('w/b') });
    await put({ key: b('other'), value: b('x') });
    await until('three events on watch 1', () =>
      got.filter((r) => r.watch_id === 1).flatMap((r) => r.events).length === 3 ? true : undefined,
    );
    const w1 = got.filter((r) => r.watch_id === 1).flatMap((r) => r.events);
    expect(w1.map((e) => [e.type, e.kv.key.toString(), e.kv.mod_revision])).toEqual([
      [0, 'w/a', 1],
      [0, 'w/b', 2],
      [1, 'w/b', 3],
    ]);
    // Watch 2 filters deletes out.
    const w2 = got.filter((r) => r.watch_id === 2).flatMap((r) => r.events);
    expect(w2.map((e) => e.type)).toEqual([0]);
    stream.write({ cancel_request: { watch_id: 1 } });
    await until('cancelled', () => got.find((r) => r.watch_id === 1 && r.canceled));
    await put({ key: b('w/c'), value: b('3') });
    await until('w/c on watch 2? no: only watch 2 is left and it watches w/b', () =>
      engine.watcherCount === 1 ? true : undefined,
    );
    stream.end();
  });

  it('gives events exact versions, create revisions and prev_kv, from now and from a revision', async () => {
    await start();
    await put({ key: b('v/a'), value: b('1') });
    await put({ key: b('v/a'), value: b('2') });
    const stream = client.bidi<WatchRequest, WatchResponse>('Watch', 'Watch');
    const got = collect(stream);
    stream.write({
      create_request: { key: b('v/'), range_end: b('v0'), prev_kv: true, watch_id: 1 },
    });
    stream.write({
      create_request: {
        key: b('v/'),
        range_end: b('v0'),
        start_revision: 1,
        prev_kv: true,
        watch_id: 2,
      },
    });
    await until('both created', () =>
      got.filter((r) => r.created).length === 2 ? true : undefined,
    );
    await put({ key: b('v/a'), value: b('3') });
    await del({ key: b('v/a') });
    await put({ key: b('v/a'), value: b('4') });
    const eventsOf = (id: number) => got.filter((r) => r.watch_id === id).flatMap((r) => r.events);
    await until('events', () =>
      eventsOf(1).length === 3 && eventsOf(2).length === 5 ? true : undefined,
    );
    const now = eventsOf(1).map((e) => [
      e.kv.version,
      e.kv.create_revision,
      e.prev_kv?.value.toString() ?? null,
    ]);
    expect(now).toEqual([
      [3, 1, '2'],
      [0, 0, '3'], // a delete is etcd's tombstone: the key and its revision only
      [1, 5, null],
    ]);
    // From revision 1, replayed from the store's history: as exact, prev_kv included.
    const past = eventsOf(2).map((e) => [
      e.kv.version,
      e.kv.create_revision,
      e.prev_kv?.value.toString() ?? null,
    ]);
    expect(past).toEqual([
      [1, 1, null],
      [2, 1, '1'],
      [3, 1, '2'],
      [0, 0, '3'],
      [1, 5, null],
    ]);
    stream.end();
  });

  it('cancels a watch from a compacted revision with compact_revision set', async () => {
    await start({ changesMax: 2 });
    for (let i = 0; i < 6; i++) await put({ key: b('c'), value: b(String(i)) });
    const stream = client.bidi<WatchRequest, WatchResponse>('Watch', 'Watch');
    const got = collect(stream);
    stream.write({ create_request: { key: b('c'), start_revision: 1 } });
    const cancelled = await until('compaction cancel', () => got.find((r) => r.canceled));
    expect(cancelled.cancel_reason).toBe('etcdserver: mvcc: required revision has been compacted');
    // compact_revision is the oldest start still served: watching from it works.
    const from = cancelled.compact_revision;
    expect(from).toBeGreaterThan(1);
    stream.write({ create_request: { key: b('c'), start_revision: from, watch_id: 5 } });
    const events = await until('events from compact_revision', () => {
      const e = got.filter((r) => r.watch_id === 5).flatMap((r) => r.events);
      return e.length > 0 && e.at(-1)?.kv.mod_revision === 6 ? e : undefined;
    });
    expect(events[0]?.kv.mod_revision).toBe(from);
    stream.end();
  });

  it('cancels a watch below a Compact with that compaction revision; at it, it replays', async () => {
    await start();
    for (let i = 1; i <= 5; i++) await put({ key: b('k'), value: b(String(i)) });
    await client.unary('KV', 'Compact', { revision: 4 });
    const stream = client.bidi<WatchRequest, WatchResponse>('Watch', 'Watch');
    const got = collect(stream);
    stream.write({ create_request: { key: b('k'), start_revision: 3, watch_id: 1 } });
    stream.write({
      create_request: { key: b('k'), start_revision: 4, watch_id: 2, prev_kv: true },
    });
    const cancelled = await until('compaction cancel', () =>
      got.find((r) => r.watch_id === 1 && r.canceled),
    );
    expect(cancelled).toMatchObject({ compact_revision: 4, events: [] });
    const events = await until('replay from 4', () => {
      const e = got.filter((r) => r.watch_id === 2).flatMap((r) => r.events);
      return e.length === 2 ? e : undefined;
    });
    expect(events.map((e) => [e.kv.mod_revision, e.kv.version, e.prev_kv?.version])).toEqual([
      [4, 4, 3],
      [5, 5, 4],
    ]);
    stream.end();
  });

  it('cancels a watcher that falls too far behind, with a reason and where to resume', async () => {
    await start(undefined, 4);
    const stream = client.bidi<WatchRequest, WatchResponse>('Watch', 'Watch');
    const got = collect(stream);
    stream.write({ create_request: { key: b('slow') } });
    await until('created', () => got.find((r) => r.created));
    stream.pause(); // the client stops reading: flow control fills the server's buffers
    const big = b('x'.repeat(64 * 1024));
    for (let i = 0; i < 200 && !got.some((r) => r.canceled); i++) {
      await put({ key: b('slow'), value: big });
    }
    stream.resume();
    const cancelled = await until('slow-watcher cancel', () => got.find((r) => r.canceled));
    expect(cancelled.cancel_reason).toMatch(
      /fell more than 4 events behind; watch again from revision \d+/,
    );
    const resumeAt = Number(/revision (\d+)/.exec(cancelled.cancel_reason)?.[1]);
    const delivered = got.flatMap((r) => r.events).map((e) => e.kv.mod_revision);
    // No gap: every event before the resume point was delivered, in order.
    expect(delivered).toEqual(Array.from({ length: resumeAt - 1 }, (_, i) => i + 1));
    stream.end();
  });
});
