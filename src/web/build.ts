/**
 * Builds the web app into dist/web when it is missing or older than its sources, so
 * `npm start` and the browser tests never serve a stale bundle. Run directly:
 * `tsx src/web/build.ts` (add `--force` to build regardless).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const outIndex = join(repo, 'dist/web/index.html');
/** Everything the bundle is built from: the app and the layers it imports. */
const sourceDirs = [
  'src/web',
  'src/kernel',
  'src/raft',
  'src/paxos',
  'src/totem',
  'src/gossip',
  'src/sim',
  'src/check',
  'src/client',
  'src/kv',
];
const sourceFile = /\.(ts|html|css)$/;

function newestSource(dir: string): number {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (sourceFile.test(name) && !name.endsWith('.test.ts'))
      newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

/** Whether dist/web is missing or older than a source file or the lock file. */
export function webBuildIsStale(): boolean {
  if (!existsSync(outIndex)) return true;
  const built = statSync(outIndex).mtimeMs;
  const lock = join(repo, 'package-lock.json');
  const inputs = [
    ...sourceDirs.map((d) => newestSource(join(repo, d))),
    existsSync(lock) ? statSync(lock).mtimeMs : 0,
  ];
  return inputs.some((t) => t > built);
}

/** Builds when stale (or forced); returns whether it built and how long it took. */
export async function ensureWebBuild(force = false): Promise<{ built: boolean; ms: number }> {
  if (!force && !webBuildIsStale()) return { built: false, ms: 0 };
  const started = performance.now();
  const { build } = await import('vite');
  await build({ configFile: join(repo, 'src/web/vite.config.ts') });
  return { built: true, ms: performance.now() - started };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { built, ms } = await ensureWebBuild(process.argv.includes('--force'));
  console.log(
    built
      ? `web app built into dist/web in ${Math.round(ms)} ms`
      : 'web app is up to date (dist/web)',
  );
}
