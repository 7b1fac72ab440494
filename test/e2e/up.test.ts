import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { QuorateClient } from '../../src/client/client.ts';
import { waitUntil } from './harness.ts';
import { freePortRange } from './ports.ts';

/**
 * The `quorate` command as a user runs it: real `quorate up` processes (three nodes each),
 * and the CLI run as separate processes that find the cluster through the
 * cluster.json `up` writes, never through --endpoints.
 */
const bin = fileURLToPath(new URL('../../bin/quorate.mjs', import.meta.url));
const ups: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const up of ups) if (up.exitCode === null) up.kill('SIGINT');
  await Promise.all(ups.map((up) => (up.exitCode === null ? exited(up) : undefined)));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

interface Up {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  output(): string;
}

/** Starts `quorate up` and resolves once it says the cluster is up. */
async function startUp(dir: string, portBase: number): Promise<Up> {
  const child = spawn(
    process.execPath,
    [bin, 'up', '--data', dir, '--port-base', String(portBase), '--no-dashboard'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  ups.push(child);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const up: Up = {
    child,
    dir,
    env: { ...process.env, QUORATE_CLUSTER: join(dir, 'cluster.json'), QUORATE_ENDPOINTS: '' },
    output: () => out,
  };
  await waitUntil('quorate up to be ready', async () =>
    out.includes('Ctrl-C stops the cluster') ? true : child.exitCode !== null ? true : undefined,
  );
  if (child.exitCode !== null) throw new Error(`quorate up exited ${child.exitCode}: ${out}`);
  return up;
}

/** `quorate ...args` as its own process; never rejects. */
function cli(env: NodeJS.ProcessEnv, ...args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [bin, ...args], { env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

async function newDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'quorate-up-'));
  dirs.push(dir);
  return dir;
}

/** The pid of node `id` among `up`'s children (Linux /proc), to kill it like a crash would. */
async function nodePid(up: ChildProcess, id: number): Promise<number> {
  const children = (await readFile(`/proc/${up.pid}/task/${up.pid}/children`, 'utf8')).trim();
  for (const pid of children.split(/\s+/).map(Number)) {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    if (cmdline[cmdline.indexOf('--id') + 1] === String(id)) return pid;
  }
  throw new Error(`no node ${id} among the children of quorate up (${children})`);
}

describe('quorate up, its cluster file, and the CLI', () => {
  it('serves every command through cluster.json, and survives the first member going down', async () => {
    const dir = await newDir();
    const portBase = await freePortRange(8);
    const up = await startUp(dir, portBase);
    const file = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as {
      endpoints: string[];
    };
    expect(file.endpoints).toHaveLength(3);

    const again = await cli(
      process.env,
      'up',
      '--data',
      await newDir(),
      '--port-base',
      String(portBase),
    );
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`port ${portBase} `);
    expect(again.stderr).not.toMatch(/\n\s+at /); // no stack trace

    expect((await cli(up.env, 'kv', 'put', 'greeting', 'hello')).code).toBe(0);
    expect(await cli(up.env, 'kv', 'get', 'greeting')).toMatchObject({
      code: 0,
      stdout: 'hello\n',
    });
    const promote = await cli(up.env, 'member', 'promote', '2');
    expect(promote).toMatchObject({ code: 2, stderr: expect.stringContaining('already a voter') });

    // More output than a pipe holds, so `head` closes it while quorate still writes.
    const client = new QuorateClient({ endpoints: file.endpoints });
    const big = 'x'.repeat(4000);
    for (let i = 0; i < 40; i++) await client.put(`many/${String(i).padStart(3, '0')}`, big);
    const piped = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        'bash',
        [
          '-c',
          `"${process.execPath}" "${bin}" kv list many/ | head -c 10 >/dev/null; exit "\${PIPESTATUS[0]}"`,
        ],
        { env: up.env },
        (err, _stdout, stderr) =>
          resolve({ code: err === null ? 0 : (err.code as number), stderr }),
      );
    });
    expect(piped).toEqual({ code: 0, stderr: '' });

    process.kill(await nodePid(up.child, 1), 'SIGKILL');
    await waitUntil('node 1 to be reported down', async () =>
      up.output().includes('node 1 stopped') ? true : undefined,
    );
    expect(await cli(up.env, 'kv', 'get', 'greeting')).toMatchObject({
      code: 0,
      stdout: 'hello\n',
    });
    const status = await cli(up.env, 'status', '--json');
    expect(status.code).toBe(0);
    const rows = JSON.parse(status.stdout) as ({ error: string } | { status: { id: number } })[];
    expect(rows).toHaveLength(3);
    expect(rows.filter((r) => 'error' in r)).toHaveLength(1);
  });

  it('after member remove 3, the next quorate up starts the others and says how to replace it', async () => {
    const dir = await newDir();
    const portBase = await freePortRange(8);
    const first = await startUp(dir, portBase);
    expect((await cli(first.env, 'kv', 'put', 'kept', 'yes')).code).toBe(0);
    expect((await cli(first.env, 'member', 'remove', '3')).code).toBe(0);
    await waitUntil('up to say node 3 was removed', async () =>
      first.output().includes('node 3 was removed from the cluster') ? true : undefined,
    );
    await waitUntil('cluster.json to retire node 3', async () => {
      const state = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as {
        retired: number[];
      };
      return state.retired.includes(3) ? true : undefined;
    });
    first.child.kill('SIGINT');
    expect(await exited(first.child)).toBe(0);

    const second = await startUp(dir, portBase);
    expect(second.output()).toContain('node 3 was removed from the cluster');
    expect(second.output()).toContain('npx quorate member add 4');
    expect(second.output()).not.toMatch(/^node 3: client/m);
    expect(await cli(second.env, 'kv', 'get', 'kept')).toMatchObject({ code: 0, stdout: 'yes\n' });
    expect((await cli(second.env, 'kv', 'put', 'after', 'restart')).code).toBe(0);
    const members = await cli(second.env, 'member', 'list', '--json');
    expect((JSON.parse(members.stdout) as { id: number }[]).map((m) => m.id).sort()).toEqual([
      1, 2,
    ]);
  });
});

describe('quorate --version and help', () => {
  it('print and exit 0', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(await cli(process.env, '--version')).toMatchObject({
      code: 0,
      stdout: `${pkg.version}\n`,
    });
    expect(await cli(process.env, 'help', 'kv')).toMatchObject({ code: 0 });
    expect((await cli(process.env, 'help', 'kv')).stdout).toContain('Exit codes');
  });
});
