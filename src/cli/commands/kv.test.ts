import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startNode, stopNodes, type TestNode } from '../../server/testing/harness.ts';
import { main } from '../main.ts';

let node: TestNode;
let out: string[] = [];
let err: string[] = [];

beforeAll(async () => {
  node = await startNode({ id: 1 });
});
afterAll(() => stopNodes(node));
afterEach(() => vi.restoreAllMocks());

/** Runs `quorate ...args` in-process against the test node; returns exit code and output. */
async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  out = [];
  err = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0);
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0);
  const hasEndpoints = args.includes('--endpoints');
  const argv = ['node', 'quorate', ...args, ...(hasEndpoints ? [] : ['--endpoints', node.url])];
  const code = await main(argv);
  vi.restoreAllMocks();
  return { code, out: out.join(''), err: err.join('') };
}

describe('quorate kv -w', () => {
  it('prints an etcdctl-style table or JSON, as asked', async () => {
    await run('kv', 'put', 'cli-w/a', 'one');
    const table = await run('kv', 'list', 'cli-w/', '-w', 'table');
    expect(table.code).toBe(0);
    expect(table.out.split('\n')).toEqual([
      '+---------+-------+---------+--------------+',
      '| KEY     | VALUE | VERSION | MOD REVISION |',
      '+---------+-------+---------+--------------+',
      expect.stringMatching(/^\| cli-w\/a \| one {3}\| 1 {7}\| \d+ +\|$/),
      '+---------+-------+---------+--------------+',
      '',
    ]);
    const json = await run('kv', 'get', 'cli-w/a', '--write-out', 'json');
    expect(JSON.parse(json.out)).toMatchObject({ entry: { key: 'cli-w/a', value: 'one' } });
    expect((await run('kv', 'get', 'cli-w/a', '--json')).out).toBe(json.out);
  });

  it('refuses a format it does not have, a table of a stream, and two formats at once', async () => {
    expect(await run('kv', 'get', 'k', '-w', 'yaml')).toMatchObject({
      code: 2,
      err: expect.stringContaining('-w must be one of simple, json, table'),
    });
    expect(await run('kv', 'watch', 'k', '-w', 'table')).toMatchObject({
      code: 2,
      err: expect.stringContaining('a watch streams'),
    });
    expect(await run('kv', 'get', 'k', '-w', 'table', '--json')).toMatchObject({
      code: 2,
      err: expect.stringContaining('two formats'),
    });
  });

  it('draws member list and status as tables', async () => {
    const members = await run('member', 'list', '-w', 'table');
    expect(members.out).toMatch(/\| ID \| ROLE +\| PEER ADDRESS +\| CLIENT URL +\|/);
    expect(members.out).toMatch(/\| 1 +\| voter +\|/);
    const status = await run('status', '-w', 'table');
    expect(status.out).toMatch(/\| ENDPOINT +\| ID \| PROTOCOL \| ROLE +\| TERM \|/);
    expect(status.out).toContain(`| ${node.url} |`);
  });
});

describe('quorate kv', () => {
  it('puts, gets, lists, swaps and deletes', async () => {
    expect(await run('kv', 'put', 'cli/a', 'hello world')).toMatchObject({ code: 0 });
    expect(await run('kv', 'get', 'cli/a')).toMatchObject({ code: 0, out: 'hello world\n' });
    expect((await run('kv', 'get', 'cli/a', '--stale', '--json')).out).toContain('"version":1');
    await run('kv', 'put', 'cli/b', 'two');
    expect(await run('kv', 'list', 'cli/', '--limit', '1')).toMatchObject({
      code: 0,
      out: 'cli/a\thello world\n',
      err: expect.stringContaining('raise --limit'),
    });
    expect(await run('kv', 'cas', 'cli/a', 'hello world', 'swapped')).toMatchObject({ code: 0 });
    expect(await run('kv', 'cas', 'cli/a', '1', 'again', '--version')).toMatchObject({
      code: 1,
      out: 'swapped\n',
      err: expect.stringContaining('version 2'),
    });
    expect(await run('kv', 'cas', 'cli/new', '0', 'created', '--version')).toMatchObject({
      code: 0,
    });
    expect(await run('kv', 'del', 'cli/a')).toMatchObject({
      code: 0,
      out: expect.stringContaining('deleted'),
    });
    expect(await run('kv', 'get', 'cli/a')).toMatchObject({
      code: 1,
      err: expect.stringContaining('not found'),
    });
  });

  it('prints changes from a revision and stops after --count', async () => {
    const rev = node.engine.machine.currentRevision;
    await run('kv', 'put', 'w/x', '1');
    await run('kv', 'del', 'w/x');
    const watched = await run('kv', 'watch', 'w/', '--from', String(rev), '--count', '2');
    expect(watched).toMatchObject({
      code: 0,
      out: `${rev + 1}\tPUT\tw/x\t1\n${rev + 2}\tDEL\tw/x\n`,
    });
  });

  it('exits 2 with a message on bad input', async () => {
    expect(await run('kv', 'put', 'only-key')).toMatchObject({ code: 2 });
    expect(await run('kv', 'cas', 'k', 'abc', 'v', '--version')).toMatchObject({
      code: 2,
      err: expect.stringContaining('<expected>'),
    });
    expect(await run('kv', 'get', 'k', '--endpoints', 'not a url')).toMatchObject({
      code: 2,
      err: expect.stringContaining('not an http(s) URL'),
    });
    expect(await run('kv', 'put', '', 'v')).toMatchObject({ code: 2 });
    expect(await run('kv', 'list', '--limit', '0')).toMatchObject({ code: 2 });
  });

  it('exits 3 with a clear error when the cluster is unreachable', async () => {
    const dead = await startNode({ id: 2 });
    await stopNodes(dead);
    const result = await run('kv', 'get', 'k', '--endpoints', dead.url, '--timeout', '500');
    expect(result.code).toBe(3);
    expect(result.err).toMatch(/quorate: .*ECONNREFUSED.*\(unreachable\)/);
    const status = await run('status', '--endpoints', dead.url);
    expect(status).toMatchObject({ code: 3, err: expect.stringContaining('no endpoint answered') });
  });
});

describe('quorate status and member', () => {
  it('shows status as text and JSON', async () => {
    const text = await run('status');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/node 1 raft leader term 1 leader 1/);
    const json = await run('status', '--json');
    expect(JSON.parse(json.out)).toMatchObject([{ endpoint: node.url, status: { id: 1 } }]);
  });

  it('adds, promotes, lists and removes a member', async () => {
    expect(
      await run('member', 'add', '7', '127.0.0.1:7007', 'http://127.0.0.1:2387'),
    ).toMatchObject({
      code: 0,
    });
    expect((await run('member', 'list')).out).toContain('7\tlearner\t127.0.0.1:7007');
    expect(await run('member', 'promote', '7')).toMatchObject({ code: 0 });
    expect((await run('member', 'list')).out).toContain('7\tvoter');
    expect(await run('member', 'remove', '7')).toMatchObject({ code: 0 });
    expect(await run('member', 'add', '0', 'h:1', 'http://h')).toMatchObject({ code: 2 });
    expect(await run('member', 'add', '8', 'no-port', 'http://h')).toMatchObject({ code: 2 });
  });

  it('documents the exit codes in --help', async () => {
    const help = await run('kv', 'put', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('3  the cluster is unreachable');
  });
});

describe('quorate kv put: where a value comes from', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quorate-kv-values-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads --file: text as text, and any other bytes stored exactly, read back byte for byte', async () => {
    const text = join(dir, 'text');
    writeFileSync(text, 'line one\nline two, naïve\n');
    expect(await run('kv', 'put', 'file/ok', '--file', text)).toMatchObject({ code: 0 });
    expect((await run('kv', 'get', 'file/ok')).out).toBe('line one\nline two, naïve\n\n');
    const bytes = Buffer.from([0x61, 0x62, 0xff, 0xfe, 0x00, 0xc3, 0x28, 0x63, 0x64, 0x0a]);
    const binary = join(dir, 'binary');
    writeFileSync(binary, bytes);
    expect(await run('kv', 'put', 'file/bin', '--file', binary)).toMatchObject({ code: 0 });
    // A real process, so stdout is bytes, not the test's capture of strings.
    const bin = fileURLToPath(new URL('../../../bin/quorate.mjs', import.meta.url));
    const out = await new Promise<Buffer>((resolve, reject) => {
      execFile(
        process.execPath,
        [bin, 'kv', 'get', 'file/bin', '--endpoints', node.url],
        { encoding: 'buffer' },
        (err, stdout) => (err === null ? resolve(stdout) : reject(err)),
      );
    });
    expect(out.equals(bytes)).toBe(true);
    // Over HTTP the same bytes: base64 when asked, and marked base64 when text was asked.
    const raw = await fetch(`${node.url}/v1/kv/file%2Fbin`);
    expect(await raw.json()).toMatchObject({
      entry: { value: bytes.toString('base64'), encoding: 'base64' },
    });
    expect((await run('kv', 'list', 'file/')).out).toContain(`base64:${bytes.toString('base64')}`);
    expect(await run('kv', 'cas', 'file/bin', 'x', '--file', binary)).toMatchObject({ code: 2 });
    expect(await run('kv', 'put', 'file/both', 'v', '--file', text)).toMatchObject({ code: 2 });
  });

  it('refuses an argument the shell could not pass as UTF-8 (Node replaced it with U+FFFD)', async () => {
    expect(await run('kv', 'put', 'arg/bad', 'ab\uFFFD\uFFFDcd')).toMatchObject({
      code: 2,
      err: expect.stringContaining('--file'),
    });
  });

  it("reads standard input for '-'", async () => {
    const bin = fileURLToPath(new URL('../../../bin/quorate.mjs', import.meta.url));
    const value = `${'0123456789'.repeat(20_000)}\n`; // 200 kB: more than an argument may hold
    const code = await new Promise<number | null>((resolve) => {
      const child = execFile(
        process.execPath,
        [bin, 'kv', 'put', 'stdin/big', '-', '--endpoints', node.url],
        (err) => resolve(err === null ? 0 : (err.code as number)),
      );
      child.stdin?.end(value);
    });
    expect(code).toBe(0);
    expect((await run('kv', 'get', 'stdin/big')).out).toBe(`${value}\n`);
  });
});
