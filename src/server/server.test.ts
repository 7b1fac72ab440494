import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADER } from '../client/wire.ts';
import { ServerMetrics } from './metrics.ts';
import { request, startNode, stopNodes, type TestNode } from './testing/harness.ts';

let node: TestNode;
let url: string;

beforeAll(async () => {
  node = await startNode(
    { id: 1 },
    { bodyBytesMax: 64 * 1024, valueLengthMax: 1000, keyLengthMax: 64 },
  );
  url = node.url;
});
afterAll(() => stopNodes(node));

const errorCode = (body: unknown) => (body as { error: { code: string } }).error.code;
const errorMessage = (body: unknown) => (body as { error: { message: string } }).error.message;

describe('key-value routes', () => {
  it('puts, gets, lists, swaps and deletes a key that contains slashes', async () => {
    const key = encodeURIComponent('app/config/x');
    expect(await request(`${url}/v1/kv/${key}`, 'PUT', { value: 'v1' })).toMatchObject({
      status: 200,
      body: { revision: 1, version: 1 },
    });
    const got = await request(`${url}/v1/kv/${key}`, 'GET');
    expect(got.body).toEqual({
      entry: { key: 'app/config/x', value: 'v1', version: 1, modRevision: 1 },
      revision: 1,
    });
    const stale = await request(`${url}/v1/kv/${key}?consistency=stale`, 'GET');
    expect(stale.body).toEqual(got.body);
    const swapped = await request(`${url}/v1/kv/${key}/cas`, 'POST', {
      expected: 'v1',
      value: 'v2',
    });
    expect(swapped.body).toMatchObject({ ok: true, entry: { value: 'v2', version: 2 } });
    const mismatch = await request(`${url}/v1/kv/${key}/cas`, 'POST', {
      expectedVersion: 1,
      value: 'v3',
    });
    expect(mismatch).toMatchObject({ status: 200, body: { ok: false, entry: { value: 'v2' } } });
    await request(`${url}/v1/kv/app%2Fother`, 'PUT', { value: 'o' });
    const listed = await request(`${url}/v1/kv?prefix=app%2F&limit=1`, 'GET');
    expect(listed.body).toMatchObject({ entries: [{ key: 'app/config/x' }], more: true });
    const deleted = await request(`${url}/v1/kv/${key}`, 'DELETE');
    expect(deleted.body).toMatchObject({ deleted: true });
    const absent = await request(`${url}/v1/kv/${key}`, 'GET');
    expect(absent).toMatchObject({ status: 200, body: { entry: null } });
  });

  it('creates only if absent with expected null or expectedVersion 0', async () => {
    const first = await request(`${url}/v1/kv/fresh/cas`, 'POST', { expected: null, value: 'a' });
    expect(first.body).toMatchObject({ ok: true });
    const again = await request(`${url}/v1/kv/fresh/cas`, 'POST', {
      expectedVersion: 0,
      value: 'b',
    });
    expect(again.body).toMatchObject({ ok: false, entry: { value: 'a' } });
  });

  it('answers a resent (session, seq) with the first result instead of applying again', async () => {
    const headers = { [HEADER.session]: '77', [HEADER.seq]: '1' };
    const first = await request(`${url}/v1/kv/once`, 'PUT', { value: 'x' }, headers);
    const again = await request(`${url}/v1/kv/once`, 'PUT', { value: 'x' }, headers);
    expect(again.body).toEqual(first.body);
    const entry = await request(`${url}/v1/kv/once`, 'GET');
    expect(entry.body).toMatchObject({ entry: { version: 1 } });
    const older = await request(`${url}/v1/kv/once`, 'DELETE', undefined, {
      [HEADER.session]: '77',
      [HEADER.seq]: '0',
    });
    expect(older.status).toBe(400);
    await request(`${url}/v1/kv/once`, 'PUT', { value: 'y' }, { ...headers, [HEADER.seq]: '5' });
    const late = await request(`${url}/v1/kv/once`, 'PUT', { value: 'z' }, headers);
    expect(late.status).toBe(409);
    expect(errorCode(late.body)).toBe('stale-sequence');
  });
});

describe('admin routes', () => {
  it('reports status, health and membership changes', async () => {
    const status = await request(`${url}/v1/status`, 'GET');
    expect(status.body).toMatchObject({ id: 1, role: 'leader', leader: 1, protocol: 'raft' });
    expect(await request(`${url}/healthz`, 'GET')).toMatchObject({ body: { ok: true, id: 1 } });
    const member = { id: 4, peerAddress: '127.0.0.1:7004', clientUrl: 'http://127.0.0.1:2383' };
    expect((await request(`${url}/v1/members`, 'POST', member)).status).toBe(200);
    const listed = await request(`${url}/v1/members`, 'GET');
    expect(listed.body).toMatchObject({ members: [{ id: 1 }, { ...member, role: 'learner' }] });
    expect((await request(`${url}/v1/members/4/promote`, 'POST')).status).toBe(200);
    expect(node.engine.status().members.find((m) => m.id === 4)?.role).toBe('voter');
    expect((await request(`${url}/v1/members/4`, 'DELETE')).status).toBe(200);
    expect(node.engine.status().members.map((m) => m.id)).toEqual([1]);
  });
});

describe('malformed, oversized and unknown requests get 4xx with a JSON code and message', () => {
  const cases: [string, string, string, unknown, Record<string, string>, number, string][] = [
    ['bad JSON', 'PUT', '/v1/kv/k', '{"value": ', {}, 400, 'invalid-request'],
    ['missing field', 'PUT', '/v1/kv/k', {}, {}, 400, 'invalid-request'],
    ['wrong type', 'PUT', '/v1/kv/k', { value: 5 }, {}, 400, 'invalid-request'],
    ['unknown field', 'PUT', '/v1/kv/k', { value: 'v', ttl: 3 }, {}, 400, 'invalid-request'],
    ['value too long', 'PUT', '/v1/kv/k', { value: 'x'.repeat(1001) }, {}, 400, 'invalid-request'],
    ['key too long', 'PUT', `/v1/kv/${'k'.repeat(65)}`, { value: 'v' }, {}, 400, 'invalid-request'],
    ['body too large', 'PUT', '/v1/kv/k', { value: 'x'.repeat(70_000) }, {}, 413, 'too-large'],
    [
      'not JSON',
      'PUT',
      '/v1/kv/k',
      'value=v',
      { 'content-type': 'application/x-www-form-urlencoded' },
      415,
      'unsupported-media-type',
    ],
    [
      'cas with both',
      'POST',
      '/v1/kv/k/cas',
      { expected: 'a', expectedVersion: 1, value: 'b' },
      {},
      400,
      'invalid-request',
    ],
    ['cas with neither', 'POST', '/v1/kv/k/cas', { value: 'b' }, {}, 400, 'invalid-request'],
    [
      'negative version',
      'POST',
      '/v1/kv/k/cas',
      { expectedVersion: -1, value: 'b' },
      {},
      400,
      'invalid-request',
    ],
    [
      'bad consistency',
      'GET',
      '/v1/kv/k?consistency=eventual',
      undefined,
      {},
      400,
      'invalid-request',
    ],
    ['bad limit', 'GET', '/v1/kv?limit=ten', undefined, {}, 400, 'invalid-request'],
    ['limit over max', 'GET', '/v1/kv?limit=5000', undefined, {}, 400, 'invalid-request'],
    ['unknown query', 'GET', '/v1/kv?prefx=a', undefined, {}, 400, 'invalid-request'],
    [
      'seq without session',
      'DELETE',
      '/v1/kv/k',
      undefined,
      { [HEADER.seq]: '1' },
      400,
      'invalid-request',
    ],
    [
      'bad session',
      'DELETE',
      '/v1/kv/k',
      undefined,
      { [HEADER.session]: 'x', [HEADER.seq]: '1' },
      400,
      'invalid-request',
    ],
    ['unknown route', 'GET', '/v2/kv/k', undefined, {}, 404, 'not-found'],
    ['unencoded slash', 'GET', '/v1/kv/a/b', undefined, {}, 404, 'not-found'],
    ['wrong method', 'PATCH', '/v1/kv/k', { value: 'v' }, {}, 405, 'method-not-allowed'],
    [
      'bad member',
      'POST',
      '/v1/members',
      { id: 0, peerAddress: 'h:1', clientUrl: 'http://h' },
      {},
      400,
      'invalid-request',
    ],
    ['bad member id', 'POST', '/v1/members/abc/promote', undefined, {}, 400, 'invalid-request'],
  ];
  it.each(cases)('%s', async (_name, method, path, body, headers, status, code) => {
    const answer = await request(`${url}${path}`, method, body, headers);
    expect(answer.status).toBe(status);
    expect(errorCode(answer.body)).toBe(code);
    expect(errorMessage(answer.body).length).toBeGreaterThan(0);
  });

  it('names the allowed methods on 405 and hints at %2F on a slash in a key', async () => {
    const wrong = await request(`${url}/v1/status`, 'DELETE');
    expect(wrong.headers.get('allow')).toContain('GET');
    const slash = await request(`${url}/v1/kv/a/b`, 'GET');
    expect(errorMessage(slash.body)).toContain('%2F');
  });

  it('leaves the store untouched by rejected writes', async () => {
    await request(`${url}/v1/kv/untouched`, 'PUT', { value: 5 });
    expect(await request(`${url}/v1/kv/untouched`, 'GET')).toMatchObject({ body: { entry: null } });
  });
});

describe('engine rejections', () => {
  it.each([
    ['overloaded', 429, 'overloaded', 'PUT'],
    ['unavailable', 504, 'unknown-outcome', 'PUT'],
    ['unavailable', 503, 'unavailable', 'GET'],
  ] as const)('%s -> %i %s on %s', async (mode, status, code, method) => {
    node.engine.setMode({ kind: mode });
    try {
      const answer = await request(
        `${url}/v1/kv/k`,
        method,
        method === 'PUT' ? { value: 'v' } : undefined,
      );
      expect(answer.status).toBe(status);
      expect(errorCode(answer.body)).toBe(code);
    } finally {
      node.engine.setMode({ kind: 'leader' });
    }
  });
});

describe('close', () => {
  it('lets a request in flight finish, then cuts idle keep-alive connections', async () => {
    const other = await startNode({ id: 8, hangMs: 150 });
    await request(`${other.url}/v1/kv/idle`, 'PUT', { value: 'keeps a socket alive' });
    other.engine.injectAfterApply('hang');
    const inFlight = request(`${other.url}/v1/kv/slow`, 'PUT', { value: 'v' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await other.server.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await inFlight).toMatchObject({ status: 200, body: { revision: 2 } });
  });
});

describe('metrics', () => {
  it('exposes the engine, HTTP and runtime series from a per-server registry', async () => {
    const metrics = new ServerMetrics();
    const other = await startNode({ id: 9 }, { metrics });
    try {
      metrics.proposal();
      metrics.commit(3);
      metrics.applyLag(2);
      metrics.observeFsync(0.002);
      metrics.election();
      metrics.leaderChange();
      metrics.bytesSent(512, 2);
      await request(`${other.url}/v1/kv/m`, 'PUT', { value: 'v' });
      const text = (await request(`${other.url}/metrics`, 'GET')).body as string;
      for (const line of [
        'quorate_proposals_total 1',
        'quorate_commits_total 3',
        'quorate_apply_lag_entries 2',
        'quorate_wal_fsync_duration_seconds_count 1',
        'quorate_elections_total 1',
        'quorate_leader_changes_total 1',
        'quorate_peer_sent_bytes_total{peer="2"} 512',
        'quorate_http_requests_total{method="PUT",route="/v1/kv/:key",status="200"} 1',
        'quorate_is_leader 1',
        'quorate_has_leader 1',
        'quorate_revision 1',
        'quorate_members 1',
        'quorate_term 1',
        'quorate_commit_index ',
        'quorate_applied_index ',
        'quorate_build_info{version="unknown",node="v',
      ]) {
        expect(text).toContain(line);
      }
      const first = (await request(`${url}/metrics`, 'GET')).body as string;
      expect(first).not.toContain('quorate_proposals_total 1');
    } finally {
      await stopNodes(other);
    }
  });

  it('caps the peer label cardinality', async () => {
    const metrics = new ServerMetrics({ peerLabelsMax: 2 });
    for (const peer of [1, 2, 3, 4, 1]) metrics.bytesSent(1, peer);
    const { body } = await metrics.render();
    expect(body).toContain('quorate_peer_sent_bytes_total{peer="1"} 2');
    expect(body).toContain('quorate_peer_sent_bytes_total{peer="other"} 2');
    expect(body).not.toContain('peer="3"');
    expect(() => new ServerMetrics({ peerLabelsMax: 0 })).toThrow(RangeError);
  });
});
