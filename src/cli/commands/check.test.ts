import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  afterAll,
  afterEach,
  beforeEach,
  describe,
  expect,
  it,
  type MockInstance,
  vi,
} from 'vitest';
import { HistoryBuilder } from '../../check/builder.ts';
import { main } from '../main.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const testdata = join(root, 'testdata');
const dir = mkdtempSync(join(tmpdir(), 'quorate-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function historyFile(name: string, history: HistoryBuilder): string {
  const path = join(dir, name);
  writeFileSync(path, history.events.map((e) => JSON.stringify(e)).join('\n'));
  return path;
}

const linearizable = historyFile(
  'ok.jsonl',
  new HistoryBuilder().invoke(1, 'put', 'x', 1).ok(1).invoke(2, 'get', 'x').ok(2, 1),
);
const stale = historyFile(
  'stale.jsonl',
  new HistoryBuilder().invoke(1, 'put', 'x', 1).ok(1).invoke(2, 'get', 'x').ok(2, 2),
);
/** Thirty overlapping writes and an impossible read: far more than 1024 search steps. */
const hard = (() => {
  const history = new HistoryBuilder();
  for (let p = 0; p < 30; p++) history.invoke(p, 'put', 'x', p);
  history.invoke(30, 'get', 'x');
  for (let p = 0; p < 30; p++) history.ok(p);
  return historyFile('hard.jsonl', history.ok(30, 'never written'));
})();

let stdout: MockInstance<typeof process.stdout.write>;
let stderr: MockInstance<typeof process.stderr.write>;
beforeEach(() => {
  stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

const printed = (spy: MockInstance<typeof process.stdout.write>) =>
  spy.mock.calls.map(([chunk]) => String(chunk)).join('');
const check = (...args: string[]) => main(['node', 'quorate', 'check', ...args]);

describe('quorate check (in-process)', () => {
  it('exits 0 on a linearizable history', async () => {
    expect(await check(linearizable)).toBe(0);
    expect(printed(stdout)).toContain('linearizable (2 operations on 1 keys)');
  });

  it('exits 1 on a violation and prints the key and explanation', async () => {
    expect(await check(stale)).toBe(1);
    expect(printed(stdout)).toMatch(/not linearizable: key "x": .*process 2 get read 2/);
  });

  it('exits 2 on a malformed line and names it', async () => {
    const path = join(dir, 'broken.jsonl');
    writeFileSync(
      path,
      '{"process":1,"type":"invoke","f":"get","key":"x","time":1}\n\n{"process":',
    );
    expect(await check(path)).toBe(2);
    expect(printed(stderr)).toContain(`${path}:3: not JSON`);
  });

  it('exits 2 on an unknown flag, format or timeout, and on a missing file', async () => {
    expect(await check(linearizable, '--bogus')).toBe(2);
    expect(await check(linearizable, '--format', 'xml')).toBe(2);
    expect(await check(linearizable, '--timeout', 'soon')).toBe(2);
    expect(await check(join(dir, 'missing.jsonl'))).toBe(2);
    expect(printed(stderr)).toContain('cannot read');
  });

  it('exits 3 when the time budget runs out on a hard history', async () => {
    expect(await check(hard, '--timeout', '0')).toBe(3);
    expect(printed(stdout)).toMatch(/unknown: key "x": time budget of 0 ms exhausted/);
  });

  it('checks several files, one verdict line each, exiting with the most serious outcome', async () => {
    expect(await check(linearizable, stale, hard, '--timeout', '0')).toBe(1);
    const lines = printed(stdout).trim().split('\n');
    expect(lines.map((line) => line.split(': ')[1])).toEqual([
      'linearizable (2 operations on 1 keys)',
      'not linearizable',
      'unknown',
    ]);
    expect(await check(stale, join(dir, 'missing.jsonl'))).toBe(2);
  });

  it('prints one JSON object with --json', async () => {
    expect(await check(stale, '--json')).toBe(1);
    const result = JSON.parse(printed(stdout));
    expect(result).toMatchObject({ file: stale, verdict: 'not-linearizable', key: 'x' });
    expect(typeof result.elapsedMs).toBe('number');
  });

  it('reads Jepsen etcd logs and EDN histories with keys starting empty', async () => {
    const etcd = join(testdata, 'jepsen-etcd', 'etcd_000.log');
    expect(await check('--format', 'jepsen', etcd)).toBe(1);
    const kv = join(testdata, 'kv', 'c01-ok.txt');
    expect(await check('--format', 'edn', '--initial-empty', kv)).toBe(0);
    expect(await check('--format', 'edn', kv)).toBe(1);
  });
});

describe('quorate check (spawned)', () => {
  const bin = join(root, 'bin', 'quorate.mjs');

  it('exits with the verdict of a file', () => {
    const etcd = join(testdata, 'jepsen-etcd', 'etcd_002.log');
    const run = spawnSync(process.execPath, [bin, 'check', '--format', 'jepsen', etcd], {
      encoding: 'utf8',
    });
    expect(run.stdout).toContain(': linearizable (64 operations on 1 keys)');
    expect(run.status).toBe(0);
  });

  it("reads standard input given '-'", () => {
    const run = spawnSync(process.execPath, [bin, 'check', '-'], {
      encoding: 'utf8',
      input: `${JSON.stringify({ process: 1, type: 'invoke', f: 'get', key: 'k', time: 1 })}\n${JSON.stringify({ process: 1, type: 'ok', f: 'get', key: 'k', value: 'ghost', time: 2 })}\n`,
    });
    expect(run.stdout).toContain('not linearizable: key "k"');
    expect(run.status).toBe(1);
  });
});
