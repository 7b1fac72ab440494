import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, startNode, stopNodes, type TestNode } from './testing/harness.ts';

let node: TestNode;
let url: string;

beforeAll(async () => {
  node = await startNode({ id: 1 });
  url = node.url;
});
afterAll(() => stopNodes(node));

const b64 = (bytes: number[]) => Buffer.from(bytes).toString('base64');
const path = (key: string) => `${url}/v1/kv/${encodeURIComponent(key)}`;

describe('bytes through the HTTP API', () => {
  it('round-trips arbitrary key and value bytes with encoding=base64, byte-exact', async () => {
    const key = b64([0x00, 0xff, 0xfe, 0x2f, 0x80]);
    const value = b64([0x61, 0x62, 0xff, 0xfe, 0x63, 0x64, 0x00]);
    const put = await request(`${path(key)}?encoding=base64`, 'PUT', { value });
    expect(put).toMatchObject({ status: 200, body: { revision: 1, version: 1 } });
    const got = await request(`${path(key)}?encoding=base64`, 'GET');
    expect(got.body).toEqual({ entry: { key, value, version: 1, modRevision: 1 }, revision: 1 });
    // Asked as text, bytes that are not UTF-8 come back in base64, marked, not replaced.
    const listed = await request(`${url}/v1/kv?prefix=`, 'GET');
    expect(listed.body).toMatchObject({ entries: [{ key, value, encoding: 'base64' }] });
    const swapped = await request(`${path(key)}/cas?encoding=base64`, 'POST', {
      expected: value,
      value: b64([1, 2, 3]),
    });
    expect(swapped.body).toMatchObject({ ok: true, entry: { value: b64([1, 2, 3]), version: 2 } });
    const deleted = await request(`${path(key)}?encoding=base64`, 'DELETE');
    expect(deleted.body).toMatchObject({ deleted: true });
  });

  it('stores text as its UTF-8 bytes and reads it back as the same text', async () => {
    await request(path('clé'), 'PUT', { value: 'naïve ✓' });
    expect((await request(path('clé'), 'GET')).body).toMatchObject({
      entry: { key: 'clé', value: 'naïve ✓' },
    });
    const raw = await request(`${path(b64([...Buffer.from('clé')]))}?encoding=base64`, 'GET');
    expect(raw.body).toMatchObject({ entry: { value: Buffer.from('naïve ✓').toString('base64') } });
  });

  it('refuses what is not base64 with a 400 naming the field', async () => {
    const bad = await request(`${path('YQ==')}?encoding=base64`, 'PUT', { value: 'not base64!' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('value is not standard base64');
  });
});
