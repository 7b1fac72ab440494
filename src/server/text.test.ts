import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, stopNodes, type TestNode } from './testing/harness.ts';
import { isWellFormed, parseJsonText } from './text.ts';

let node: TestNode;
beforeAll(async () => {
  node = await startNode({ id: 1 });
});
afterAll(() => stopNodes(node));

/** A raw HTTP exchange: the body goes as these exact bytes, the answer comes back as bytes. */
function raw(method: string, path: string, body?: Buffer) {
  return new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json' };
    const req = request(`${node.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const json = (b: Buffer) => JSON.parse(b.toString('utf8'));
/** Text a careless layer would mangle: NUL, controls, combining marks, astral characters. */
const tricky = 'a\u0000b\tc\nd "q" \\ \u00e9e\u0301 \u4e2d\u6587 \u{1f600}\u{10ffff} \ufeff end';
const trickyKey = 'dir/sub dir/%41?x=1#frag&+ \u00e9\u{1f600}';

describe('text in the HTTP API', () => {
  it('refuses a body that is not UTF-8 with 400, and stores nothing', async () => {
    const body = Buffer.concat([
      Buffer.from('{"value":"ab'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('cd"}'),
    ]);
    const put = await raw('PUT', '/v1/kv/bin', body);
    expect(put.status).toBe(400);
    expect(json(put.body).error).toMatchObject({ code: 'invalid-request' });
    expect(json(put.body).error.message).toContain('UTF-8');
    expect(json((await raw('GET', '/v1/kv/bin')).body).entry).toBeNull();
  });

  it('refuses a lone surrogate (a \\udcff escape) with 400', async () => {
    const put = await raw('PUT', '/v1/kv/sur', Buffer.from('{"value":"x\\udcffy"}'));
    expect(put.status).toBe(400);
    expect(json(put.body).error.message).toContain('$.value');
    expect(json((await raw('GET', '/v1/kv/sur')).body).entry).toBeNull();
  });

  it('refuses a path or query that is not percent-encoded UTF-8, in the API error shape', async () => {
    for (const path of ['/v1/kv/%FF', '/v1/kv/%ED%B3%BF', '/v1/kv?prefix=%FF']) {
      const answer = await raw('GET', path);
      expect(answer.status).toBe(400);
      expect(json(answer.body).error).toMatchObject({ code: 'invalid-request' });
    }
  });

  it('keeps keys and values byte for byte', async () => {
    const value = Buffer.from(JSON.stringify({ value: tricky }), 'utf8');
    const path = `/v1/kv/${encodeURIComponent(trickyKey)}`;
    expect((await raw('PUT', path, value)).status).toBe(200);
    const got = json((await raw('GET', path)).body).entry;
    expect(Buffer.from(got.value, 'utf8').equals(Buffer.from(tricky, 'utf8'))).toBe(true);
    expect(got.key).toBe(trickyKey);
    const listed = json(
      (await raw('GET', `/v1/kv?prefix=${encodeURIComponent('dir/sub dir/')}`)).body,
    );
    expect(listed.entries.map((e: { key: string }) => e.key)).toEqual([trickyKey]);
  });
});

describe('text through the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quorate-text-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const bin = fileURLToPath(new URL('../../bin/quorate.mjs', import.meta.url));
  const cli = (...args: string[]) =>
    new Promise<{ code: number; stdout: Buffer }>((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args, '--endpoints', node.url],
        { encoding: 'buffer' },
        (err, stdout) => resolve({ code: err === null ? 0 : (err.code as number), stdout }),
      );
    });

  it('a value put from a file reads back as the same bytes (plus the newline get prints)', async () => {
    const file = join(dir, 'value');
    writeFileSync(file, tricky, 'utf8');
    expect((await cli('kv', 'put', trickyKey, '--file', file)).code).toBe(0);
    const got = await cli('kv', 'get', trickyKey);
    expect(got.code).toBe(0);
    expect(got.stdout.equals(Buffer.from(`${tricky}\n`, 'utf8'))).toBe(true);
  });
});

describe('parseJsonText', () => {
  it('parses text and refuses what is not', () => {
    expect(parseJsonText(Buffer.from('{"a":["\u{1f600}"]}'))).toEqual({ a: ['\u{1f600}'] });
    expect(() => parseJsonText(Buffer.from([0x22, 0xc3, 0x22]))).toThrow(/UTF-8/);
    expect(() => parseJsonText(Buffer.from('{"a":{"\\ud800":1}}'))).toThrow(/property name/);
    expect(() => parseJsonText(Buffer.from(' '))).toThrow(/empty/);
    expect(() => parseJsonText(Buffer.from('{'))).toThrow(/not JSON/);
    expect(isWellFormed('\u{1f600}')).toBe(true);
    expect(isWellFormed('\ud83d')).toBe(false);
  });
});
