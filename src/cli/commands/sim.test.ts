import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { main } from '../main.ts';

const root = new URL('../../..', import.meta.url).pathname;
let out: string;
let err: string;

beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err += String(chunk);
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

const sim = (...args: string[]) => main(['node', 'quorate', 'sim', ...args]);

describe('quorate sim', () => {
  it('exits 0 when every check holds', async () => {
    expect(await sim('primary-backup', '--seed', '4', '--faults', 'none', '--ops', '60')).toBe(0);
    expect(out).toMatch(/^primary-backup seed 4: pass \(linearizable/);
  });

  it('exits 1 on a violation and prints a replay command that reproduces it', async () => {
    const args = ['primary-backup', '--seed', '3', '--faults', 'partition'];
    expect(await sim(...args)).toBe(1);
    const replay = /replay: npx quorate (sim .*)\n/.exec(out)?.[1];
    expect(replay).toBe(
      'sim primary-backup --nodes 3 --seed 3 --ops 200 --clients 5 --faults partition',
    );
    const first = out;
    out = '';
    expect(await main(['node', 'quorate', ...replay!.split(' ')])).toBe(1);
    expect(out).toBe(first);
  });

  it('exits 2 on bad arguments', async () => {
    expect(await sim('primary-backup', '--bogus')).toBe(2);
    expect(await sim('no-such-protocol', '--seed', '1')).toBe(2);
    expect(err).toMatch(/unknown protocol 'no-such-protocol'/);
    expect(await sim('primary-backup', '--faults', 'meteor')).toBe(2);
    expect(await sim('primary-backup', '--nodes', '0')).toBe(2);
    expect(await sim('primary-backup', '--intensity', '2')).toBe(2);
    expect(await sim('primary-backup', '--seeds', '2', '--trace', 'x.jsonl')).toBe(2);
  });

  it('runs many seeds with a summary, and --json for machines', async () => {
    const code = await sim(
      'primary-backup',
      '--seed',
      '1',
      '--seeds',
      '4',
      '--faults',
      'partition',
      '--json',
    );
    expect(code).toBe(1);
    const summary = JSON.parse(out) as {
      runs: number;
      failed: number;
      firstFailure: { replay: string };
    };
    expect(summary.runs).toBe(4);
    expect(summary.failed).toBeGreaterThan(0);
    expect(summary.firstFailure.replay).toMatch(/^npx quorate sim primary-backup .*--seed \d+/);
  });

  it('writes identical --trace files for the same seed, different for another; --history too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorate-sim-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const run = async (seed: string, name: string) => {
      const trace = join(dir, `${name}.trace.jsonl`);
      const history = join(dir, `${name}.history.jsonl`);
      const args = ['primary-backup', '--seed', seed, '--ops', '50', '--faults', 'crash,loss'];
      await sim(...args, '--trace', trace, '--history', history);
      return { trace: readFileSync(trace, 'utf8'), history: readFileSync(history, 'utf8') };
    };
    const a = await run('8', 'a');
    const b = await run('8', 'b');
    const c = await run('9', 'c');
    expect(b.trace).toBe(a.trace);
    expect(c.trace).not.toBe(a.trace);
    expect(a.trace.split('\n')[0]).toMatch(
      /^\{"t":0,"type":"start","protocol":"primary-backup","seed":8/,
    );
    const events = a.history
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ type: 'invoke' });
    expect(Object.keys(events[0])).toEqual(['process', 'type', 'f', 'key', 'value', 'time']);
  });

  it('works as a real process through bin/quorate.mjs', () => {
    const run = (args: string[]) => {
      try {
        execFileSync('node', ['bin/quorate.mjs', 'sim', ...args], { cwd: root, stdio: 'pipe' });
        return 0;
      } catch (e) {
        return (e as { status: number }).status;
      }
    };
    expect(run(['primary-backup', '--seed', '2', '--faults', 'none', '--ops', '40'])).toBe(0);
    expect(run(['primary-backup', '--unknown-flag'])).toBe(2);
  });
});

describe('quorate sim --help', () => {
  it("names exactly the simulator's protocols, without loading the simulator", async () => {
    const { simProtocolNames } = await import('./sim.ts');
    const { protocols } = await import('../../sim/protocols.ts');
    expect([...simProtocolNames].sort()).toEqual([...protocols.keys()].sort());
  });
});
