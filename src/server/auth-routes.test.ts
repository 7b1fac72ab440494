import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvOp } from '../kv/machine.ts';
import { AuthGate } from './auth.ts';
import { request, startNode, stopNodes, type TestNode } from './testing/harness.ts';

const SECRET = 'a cluster secret of some length';
let node: TestNode;

beforeAll(async () => {
  node = await startNode({ id: 1 }, { auth: { secret: SECRET, scryptCost: 1024 } });
  const gate = new AuthGate(node.engine, { secret: SECRET, scryptCost: 1024 });
  const ops: KvOp[] = [
    { f: 'userAdd', name: 'root', password: await gate.hashPassword('rootpw') },
    { f: 'userGrantRole', user: 'root', role: 'root' },
    { f: 'userAdd', name: 'alice', password: await gate.hashPassword('alicepw') },
    { f: 'roleAdd', name: 'app' },
    {
      f: 'roleGrantPermission',
      name: 'app',
      perm: { permType: 'readwrite', key: 'app/', rangeEnd: 'app0' },
    },
    { f: 'userGrantRole', user: 'alice', role: 'app' },
    { f: 'put', key: 'secret', value: 's1' },
    { f: 'authEnable' },
  ];
  for (const op of ops) await node.engine.write({ session: 0, seq: 0, op });
});
afterAll(() => stopNodes(node));

const code = (body: unknown) => (body as { error: { code: string; message: string } }).error;

async function login(name: string, password: string): Promise<string> {
  const r = await request(`${node.url}/v1/auth/authenticate`, 'POST', { name, password });
  expect(r.status).toBe(200);
  return (r.body as { token: string }).token;
}

describe('HTTP API with auth on (bearer tokens)', () => {
  it('refuses a call without a token with 401 and changes nothing', async () => {
    const rev = node.engine.status().revision;
    const put = await request(`${node.url}/v1/kv/app%2F1`, 'PUT', { value: 'x' });
    expect(put.status).toBe(401);
    expect(code(put.body)).toEqual({
      code: 'unauthenticated',
      message: 'etcdserver: user name is empty',
    });
    expect((await request(`${node.url}/v1/kv/secret`, 'GET')).status).toBe(401);
    const forged = await request(
      `${node.url}/v1/kv/app%2F1`,
      'PUT',
      { value: 'x' },
      { authorization: 'Bearer x.y' },
    );
    expect(code(forged.body)).toEqual({
      code: 'unauthenticated',
      message: 'etcdserver: invalid auth token',
    });
    const wrong = await request(`${node.url}/v1/auth/authenticate`, 'POST', {
      name: 'alice',
      password: 'no',
    });
    expect(wrong.status).toBe(401);
    expect(node.engine.status().revision).toBe(rev);
  });

  it('refuses a call outside the permissions with 403 and changes nothing; allows inside', async () => {
    const bearer = { authorization: `Bearer ${await login('alice', 'alicepw')}` };
    const rev = node.engine.status().revision;
    const put = await request(`${node.url}/v1/kv/secret`, 'PUT', { value: 'x' }, bearer);
    expect(put.status).toBe(403);
    expect(code(put.body)).toEqual({
      code: 'permission-denied',
      message: 'etcdserver: permission denied',
    });
    expect((await request(`${node.url}/v1/kv/secret`, 'DELETE', undefined, bearer)).status).toBe(
      403,
    );
    expect((await request(`${node.url}/v1/kv/secret`, 'GET', undefined, bearer)).status).toBe(403);
    expect((await request(`${node.url}/v1/kv?prefix=app`, 'GET', undefined, bearer)).status).toBe(
      403,
    );
    const member = { id: 9, peerAddress: '127.0.0.1:1', clientUrl: 'http://127.0.0.1:2' };
    expect((await request(`${node.url}/v1/members`, 'POST', member, bearer)).status).toBe(403);
    expect(node.engine.status().revision).toBe(rev);
    expect(node.engine.machine.read({ f: 'get', key: 'secret' })).toMatchObject({
      entry: { value: 's1' },
    });

    expect(
      (await request(`${node.url}/v1/kv/app%2F1`, 'PUT', { value: 'ok' }, bearer)).status,
    ).toBe(200);
    const got = await request(`${node.url}/v1/kv?prefix=app%2F`, 'GET', undefined, bearer);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ entries: [{ key: 'app/1', value: 'ok' }] });
    const root = { authorization: `Bearer ${await login('root', 'rootpw')}` };
    expect((await request(`${node.url}/v1/kv/secret`, 'GET', undefined, root)).body).toMatchObject({
      entry: { value: 's1' },
    });
  });
});
