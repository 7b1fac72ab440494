import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEngine } from '../testing/memory-engine.ts';
import { EtcdGrpcClient } from './grpc-client.ts';
import { createEtcdServer, type EtcdServer } from './server.ts';
import type { RangeResponse, WatchRequest, WatchResponse } from './types.ts';

const b = (s: string) => Buffer.from(s);
const SECRET = 'a cluster secret of some length';

let engine: MemoryEngine;
let server: EtcdServer;
let client: EtcdGrpcClient;

beforeAll(async () => {
  engine = new MemoryEngine({ id: 3 });
  server = createEtcdServer({
    engine,
    clusterSecret: SECRET,
    version: '0.0.0-test',
    auth: { scryptCost: 1024 },
  });
  client = new EtcdGrpcClient(await server.listen('127.0.0.1', 0));
});
afterAll(async () => {
  client.close();
  await server.close();
});

/** A unary call with the token (if any) in the `token` metadata, as etcdctl sends it. */
function call<Res>(
  service: 'KV' | 'Auth' | 'Lease' | 'Cluster' | 'Maintenance',
  method: string,
  req: object,
  token?: string,
): Promise<Res> {
  const md = new Metadata();
  if (token !== undefined) md.set('token', token);
  return client.unaryWith<object, Res>(service, method, req, md);
}

async function failure(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('the call succeeded');
}

const denied = { code: status.PERMISSION_DENIED, details: 'etcdserver: permission denied' };
const noUser = { code: status.INVALID_ARGUMENT, details: 'etcdserver: user name is empty' };

async function value(key: string, token: string): Promise<string | undefined> {
  const r = await call<RangeResponse>('KV', 'Range', { key: b(key) }, token);
  return r.kvs[0]?.value.toString();
}

let root = '';
let alice = '';

describe('etcd auth over gRPC', () => {
  it('refuses enabling without root, then enables with root and root role', async () => {
    expect(await failure(call('Auth', 'AuthEnable', {}))).toEqual({
      code: status.FAILED_PRECONDITION,
      details: 'etcdserver: root user does not exist',
    });
    expect(await failure(call('Auth', 'Authenticate', { name: 'root', password: 'x' }))).toEqual({
      code: status.FAILED_PRECONDITION,
      details: 'etcdserver: authentication is not enabled',
    });
    await call('Auth', 'UserAdd', { name: 'root', password: 'rootpw' });
    expect(await failure(call('Auth', 'AuthEnable', {}))).toMatchObject({
      details: 'etcdserver: root user does not have root role',
    });
    await call('Auth', 'RoleAdd', { name: 'root' });
    await call('Auth', 'UserGrantRole', { user: 'root', role: 'root' });
    await call('Auth', 'UserAdd', { name: 'alice', password: 'alicepw' });
    await call('Auth', 'RoleAdd', { name: 'app' });
    await call('Auth', 'RoleGrantPermission', {
      name: 'app',
      perm: { permType: 2, key: b('app/'), range_end: b('app0') },
    });
    await call('Auth', 'UserGrantRole', { user: 'alice', role: 'app' });
    await call('KV', 'Put', { key: b('secret'), value: b('s1') });
    await call('Auth', 'AuthEnable', {});
    expect(await call('Auth', 'AuthStatus', {})).toMatchObject({ enabled: true });
    expect(
      await failure(call('Auth', 'Authenticate', { name: 'root', password: 'wrong' })),
    ).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'etcdserver: authentication failed, invalid user ID or password',
    });
    root = (
      await call<{ token: string }>('Auth', 'Authenticate', { name: 'root', password: 'rootpw' })
    ).token;
    alice = (
      await call<{ token: string }>('Auth', 'Authenticate', { name: 'alice', password: 'alicepw' })
    ).token;
    expect(root).not.toBe('');
  });

  it('KV: refuses a call without a token or outside the permissions, and changes nothing', async () => {
    const rev = engine.status().revision;
    expect(await failure(call('KV', 'Put', { key: b('secret'), value: b('x') }))).toEqual(noUser);
    expect(await failure(call('KV', 'Put', { key: b('secret'), value: b('x') }, alice))).toEqual(
      denied,
    );
    expect(await failure(call('KV', 'Range', { key: b('secret') }, alice))).toEqual(denied);
    expect(await failure(call('KV', 'Range', { key: b('secret') }))).toEqual(noUser);
    // A prefix wider than the permission, a txn with one op outside it, a delete outside it.
    expect(
      await failure(call('KV', 'Range', { key: b('app'), range_end: b('app1') }, alice)),
    ).toEqual(denied);
    const txn = {
      compare: [],
      success: [
        { request_put: { key: b('app/1'), value: b('x') } },
        { request_put: { key: b('secret'), value: b('x') } },
      ],
    };
    expect(await failure(call('KV', 'Txn', txn, alice))).toEqual(denied);
    expect(await failure(call('KV', 'DeleteRange', { key: b('secret') }, alice))).toEqual(denied);
    expect(await failure(call('KV', 'Compact', { revision: 1 }, alice))).toEqual(denied);
    expect(
      await failure(call('KV', 'Put', { key: b('app/1'), value: b('x') }, 'forged.token')),
    ).toEqual({
      code: status.UNAUTHENTICATED,
      details: 'etcdserver: invalid auth token',
    });
    expect(engine.status().revision).toBe(rev);
    expect(await value('secret', root)).toBe('s1');
    expect(await value('app/1', root)).toBeUndefined();
    // Inside the permission it works.
    await call('KV', 'Put', { key: b('app/1'), value: b('ok') }, alice);
    expect(await value('app/1', alice)).toBe('ok');
  });

  it('checks writes again where they apply: a permission revoked after the edge check holds', async () => {
    const rev = engine.status().revision;
    // The edge let this through (alice could write app/); the revoke lands first in the log.
    await engine.write({
      session: 0,
      seq: 0,
      op: { f: 'roleRevokePermission', role: 'app', key: 'app/', rangeEnd: 'app0' },
    });
    const result = await engine.write({
      session: 0,
      seq: 0,
      op: { f: 'asUser', user: 'alice', op: { f: 'put', key: 'app/2', value: 'x' } },
    });
    expect(result).toEqual({ f: 'error', code: 'permissionDenied' });
    expect(engine.status().revision).toBe(rev);
    await call(
      'Auth',
      'RoleGrantPermission',
      {
        name: 'app',
        perm: { permType: 2, key: b('app/'), range_end: b('app0') },
      },
      root,
    );
  });

  it('Watch: a watch outside the permission is created canceled, permission denied', async () => {
    const md = new Metadata();
    md.set('token', alice);
    const stream = client.bidiWith<WatchRequest, WatchResponse>('Watch', 'Watch', md);
    const got: WatchResponse[] = [];
    const twoAnswers = new Promise<void>((resolve) =>
      stream.on('data', (r: WatchResponse) => {
        got.push(r);
        if (got.length === 2) resolve();
      }),
    );
    stream.write({ create_request: { key: b('secret') } });
    stream.write({ create_request: { key: b('app/'), range_end: b('app0') } });
    await twoAnswers;
    expect(got[0]).toMatchObject({
      created: true,
      canceled: true,
      cancel_reason: 'etcdserver: permission denied',
    });
    expect(got[1], got[1]?.cancel_reason).toMatchObject({ created: true, canceled: false });
    stream.end();
    const noToken = client.bidiWith<WatchRequest, WatchResponse>('Watch', 'Watch', new Metadata());
    const err = await new Promise<ServiceError>((resolve) => noToken.on('error', resolve));
    expect({ code: err.code, details: err.details }).toEqual(noUser);
  });

  it('Lease: refuses without a token and grants nothing', async () => {
    expect(await failure(call('Lease', 'LeaseGrant', { TTL: 10 }))).toEqual(noUser);
    const leases = await call<{ leases: unknown[] }>('Lease', 'LeaseLeases', {}, root);
    expect(leases.leases).toEqual([]);
  });

  it('Cluster: member list needs a user, member changes the root role; nothing changes', async () => {
    const before = engine.status().members.length;
    expect(await failure(call('Cluster', 'MemberList', {}))).toEqual(noUser);
    expect(
      await failure(call('Cluster', 'MemberAdd', { peerURLs: ['http://127.0.0.1:1'] }, alice)),
    ).toEqual(denied);
    expect(await failure(call('Cluster', 'MemberRemove', { ID: 3 }, alice))).toEqual(denied);
    expect(engine.status().members.length).toBe(before);
    await call('Cluster', 'MemberList', {}, alice);
    // Maintenance (etcd's authMaintenanceServer): status and alarm reads need a user,
    // changing an alarm the root role.
    expect(await failure(call('Maintenance', 'Status', {}))).toEqual(noUser);
    await call('Maintenance', 'Status', {}, alice);
    await call('Maintenance', 'Alarm', { action: 0 }, alice);
    expect(await failure(call('Maintenance', 'Alarm', { action: 2 }, alice))).toEqual(denied);
  });

  it('Auth: management needs the root role; root cannot be removed while enabled', async () => {
    expect(await failure(call('Auth', 'UserAdd', { name: 'eve', password: 'x' }, alice))).toEqual(
      denied,
    );
    expect(await failure(call('Auth', 'UserList', {}))).toEqual(noUser);
    expect(await failure(call('Auth', 'UserDelete', { name: 'root' }, root))).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'etcdserver: invalid auth management',
    });
    expect(await call('Auth', 'UserList', {}, root)).toMatchObject({ users: ['alice', 'root'] });
    expect(await call('Auth', 'UserGet', { name: 'alice' }, alice)).toMatchObject({
      roles: ['app'],
    });
    // A password change voids the user's earlier tokens.
    await call('Auth', 'UserChangePassword', { name: 'alice', password: 'new' }, root);
    expect(await failure(call('KV', 'Range', { key: b('app/1') }, alice))).toMatchObject({
      code: status.UNAUTHENTICATED,
    });
    await call('Auth', 'AuthDisable', {}, root);
    expect(await value('secret', '')).toBe('s1');
  });
});
