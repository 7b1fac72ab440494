import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePortRange } from '../e2e/ports.ts';

/**
 * The package as users get it: `npm pack` (its prepack builds dist/ and the web app) in a
 * copy of this checkout, the tarball installed into a fresh project from the npm cache
 * (`npm ci` filled it), then used three ways: a plain .mjs program, a TypeScript consumer
 * with an ordinary emitting tsconfig, and the installed `quorate` command.
 *
 * The copy keeps the checkout's own dist/ out of it: other tests run `bin/quorate.mjs`,
 * which must not see a build being replaced under it.
 */
const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'quorate-package-'));
const copy = join(work, 'checkout');
const consumer = join(work, 'consumer');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const quorateBin = join(consumer, 'node_modules', 'quorate', 'bin', 'quorate.mjs');
const children: ChildProcess[] = [];

interface PackResult {
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly entryCount: number;
  readonly files: readonly { readonly path: string }[];
}
let packed: PackResult;

const versionOf = (name: string): string =>
  (
    JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

beforeAll(async () => {
  mkdirSync(copy);
  for (const entry of ['src', 'bin', 'scripts', 'proto'])
    cpSync(join(repo, entry), join(copy, entry), { recursive: true });
  for (const file of [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'README.md',
    'LICENSE',
  ]) {
    cpSync(join(repo, file), join(copy, file));
  }
  symlinkSync(join(repo, 'node_modules'), join(copy, 'node_modules'), 'dir');
  const { stdout } = await run(npm, ['pack', '--json', '--pack-destination', work], {
    cwd: copy,
    maxBuffer: 16 * 1024 * 1024,
  });
  // prepack's build output comes before npm's JSON on stdout.
  packed = (JSON.parse(stdout.slice(stdout.indexOf('[\n'))) as PackResult[])[0] as PackResult;
  console.log(
    `package: ${packed.filename} ${(packed.size / 1024).toFixed(1)} KiB packed, ` +
      `${(packed.unpackedSize / 1024).toFixed(1)} KiB unpacked, ${packed.entryCount} files`,
  );
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  await run(
    npm,
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      join(work, packed.filename),
      `typescript@${versionOf('typescript')}`,
      `@types/node@${versionOf('@types/node')}`,
    ],
    { cwd: consumer, maxBuffer: 16 * 1024 * 1024 },
  );
}, 600_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('the tarball', () => {
  it('holds the build, the web app, README and LICENSE, and no tests or sources', () => {
    const paths = packed.files.map((f) => f.path);
    for (const needed of [
      'LICENSE',
      'README.md',
      'bin/quorate.mjs',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/raft/index.d.ts',
      'dist/cli/main.js',
      'dist/web/index.html',
      'proto/rpc.proto',
    ]) {
      expect(paths).toContain(needed);
    }
    expect(
      paths.filter(
        (p) => /\.test\.|\.cases\.|^src\/|^test\/|\.ts$/.test(p) && !p.endsWith('.d.ts'),
      ),
    ).toEqual([]);
  });
});

describe('a plain .mjs program on Node', () => {
  it('embeds three Raft cores in memory and elects a leader', async () => {
    writeFileSync(
      join(consumer, 'embed.mjs'),
      `import { Rng } from 'quorate/kernel';
import { RaftCore, defaultRaftOptions, makeConfig } from 'quorate/raft';

const ids = [1, 2, 3];
const cores = new Map(
  ids.map((id) => [id, RaftCore.create(id, makeConfig(ids), defaultRaftOptions(), Rng.fromSeed(id))]),
);
const inFlight = [];
let elected;
for (let now = 0; now <= 10_000 && elected === undefined; now += 10) {
  for (const core of cores.values()) core.tick(now);
  for (let busy = true; busy; ) {
    busy = false;
    for (const core of cores.values()) {
      const ready = core.ready();
      if (ready === undefined) continue;
      busy = true;
      for (const out of [...ready.early, ...ready.messages]) inFlight.push({ from: core.id, ...out });
      for (const event of ready.events) if (event.type === 'elected') elected = core.id;
      core.advance();
    }
    for (const { from, to, msg } of inFlight.splice(0)) cores.get(to).receive(now, from, msg);
  }
}
const leaders = ids.map((id) => cores.get(id).status().leader);
console.log(JSON.stringify({ elected, leaders }));
`,
    );
    const { stdout } = await run(process.execPath, ['embed.mjs'], { cwd: consumer });
    const { elected, leaders } = JSON.parse(stdout) as { elected: number; leaders: number[] };
    expect([1, 2, 3]).toContain(elected);
    expect(leaders).toEqual([elected, elected, elected]);
  });
});

/** Starts the installed `quorate up` and resolves with its printed endpoints and dashboard. */
async function installedUp(dataDir: string, portBase: number) {
  const child = spawn(
    process.execPath,
    [quorateBin, 'up', '--data', dataDir, '--port-base', String(portBase)],
    { cwd: consumer, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return new Promise<{ child: ChildProcess; endpoints: string; dashboard: string }>(
    (resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`quorate up not ready: ${out}${err}`)),
        60_000,
      );
      child.once('exit', (code) => reject(new Error(`quorate up exited ${code}: ${out}${err}`)));
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const endpoints = /^endpoints: (\S+)$/m.exec(out)?.[1];
        const dashboard = /^dashboard: (\S+)$/m.exec(out)?.[1];
        if (endpoints === undefined || dashboard === undefined) return;
        clearTimeout(timer);
        resolve({ child, endpoints, dashboard });
      });
    },
  );
}

describe('the installed quorate command and a TypeScript consumer', () => {
  it('quorate up serves the dashboard, kv put/get work, and the typed client runs', async () => {
    const portBase = await freePortRange(7);
    const up = await installedUp(join(work, 'data'), portBase);
    try {
      const page = await fetch(up.dashboard);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<script[^>]+src="\/assets\//);

      const cli = (...args: string[]) =>
        run(process.execPath, [quorateBin, 'kv', ...args, '--endpoints', up.endpoints], {
          cwd: consumer,
        });
      await cli('put', 'greeting', 'hello from the tarball');
      expect((await cli('get', 'greeting')).stdout).toBe('hello from the tarball\n');

      writeFileSync(
        join(consumer, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            outDir: 'out',
            declaration: true,
            skipLibCheck: false,
            types: ['node'],
          },
          include: ['client.ts', 'examples/*.ts'],
        }),
      );
      writeFileSync(
        join(consumer, 'client.ts'),
        `import { QuorateClient, type GetResponse } from 'quorate/client';
import { checkHistory, HistoryBuilder } from 'quorate';

const client = new QuorateClient({ endpoints: process.argv[2]!.split(','), timeoutMs: 5000 });
const put = await client.put('typed', 'from TypeScript');
const got: GetResponse = await client.get('typed');
const history = new HistoryBuilder().invoke(1, 'put', 'typed', 'from TypeScript').ok(1);
console.log(JSON.stringify({ revision: put.revision, value: got.entry?.value, check: checkHistory(history.events).verdict }));
`,
      );
      cpSync(join(repo, 'examples'), join(consumer, 'examples'), { recursive: true });
      await run(
        process.execPath,
        [join(consumer, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'],
        {
          cwd: consumer,
        },
      );
      const { stdout } = await run(process.execPath, ['out/client.js', up.endpoints], {
        cwd: consumer,
      });
      // The examples of examples/README.md, compiled by the same tsc run, each run here.
      const example = async (name: string, ...args: string[]) =>
        JSON.parse(
          (await run(process.execPath, [`out/examples/${name}.js`, ...args], { cwd: consumer }))
            .stdout,
        );
      expect(await example('embed-raft')).toMatchObject({ values: [13, 13, 13] });
      expect(await example('check-history')).toMatchObject({
        stale: 'not-linearizable',
        again: 'not-linearizable',
        concurrent: 'linearizable',
      });
      expect(await example('client', up.endpoints)).toMatchObject({
        value: 'hello',
        casApplied: false,
        casSaw: 'hello',
        keys: ['examples/greeting'],
        unreachable: 'unreachable',
      });
      const result = JSON.parse(stdout) as { revision: number; value: string; check: string };
      expect(result.value).toBe('from TypeScript');
      expect(result.revision).toBeGreaterThan(0);
      expect(result.check).toBe('linearizable');
    } finally {
      up.child.removeAllListeners('exit');
      up.child.kill('SIGINT');
      await new Promise((done) => up.child.once('exit', done));
    }
  });
});
