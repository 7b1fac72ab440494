#!/usr/bin/env node
/**
 * Compiles src/ (not the web app, not tests) to JavaScript and .d.ts in dist/ with
 * tsconfig.build.json, when dist is missing or older than a source file (`--force`: always).
 * bin/quorate.mjs asks `libBuildIsStale()` (lib-freshness.mjs) in a clone: it runs dist only
 * when it is current, so an edited source is never shadowed by an old build.
 *
 * dist/.lib-stamp is written after a complete build and removed before one starts: a
 * `quorate` started mid-build sees a stale build and runs the sources instead.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { libBuildIsStale } from './lib-freshness.mjs';

export { libBuildIsStale };

const repo = fileURLToPath(new URL('..', import.meta.url));
const dist = join(repo, 'dist');
const stamp = join(dist, '.lib-stamp');

/** Builds when stale or forced; returns whether it built. Throws when tsc fails. */
export async function buildLib(force = false) {
  if (!force && !libBuildIsStale()) return false;
  rmSync(stamp, { force: true });
  // Files of deleted sources must not linger in the package; dist/web is Vite's.
  if (existsSync(dist)) {
    for (const name of readdirSync(dist)) {
      if (name !== 'web') rmSync(join(dist, name), { recursive: true, force: true });
    }
  }
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(repo, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (exit ${r.status})`);
  rewriteDeclarationImports(dist);
  await bundleCli();
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  return true;
}

/**
 * The `quorate` command as one bundle (dist/cli-bundle, entry main.js), split at its lazy
 * imports so each command still loads only what it runs. Start-up is most of a short CLI
 * call, and resolving and loading ~60 separate modules was a fifth of it (measured: a
 * `kv get` 120 ms as separate modules, 100 ms bundled, `node -e 0` 60 ms). commander is
 * bundled in; the other packages stay imports of node_modules, as a library's must.
 */
async function bundleCli() {
  const { build } = await import('esbuild');
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
  await build({
    entryPoints: [join(dist, 'cli', 'main.js')],
    outdir: join(dist, 'cli-bundle'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: Object.keys(pkg.dependencies).filter((name) => name !== 'commander'),
    // commander is CommonJS and requires Node's built-ins; an ES module has no `require`.
    banner: {
      js: "import { createRequire as quorateCreateRequire } from 'node:module'; const require = quorateCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
}

/** A relative specifier ending in .ts, quoted, after `from` or inside `import(...)`. */
const tsSpecifier = /((?:from\s+|import\()['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g;

/**
 * tsc rewrites `.ts` import paths in the JavaScript it emits but copies them unchanged
 * into .d.ts files. TypeScript 5 reads those, but older compilers (TS2691) and other
 * declaration readers do not: point them at the emitted `.js`, whose `.d.ts` sits beside it.
 */
function rewriteDeclarationImports(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== join(dist, 'web')) rewriteDeclarationImports(path);
    } else if (entry.name.endsWith('.d.ts')) {
      const text = readFileSync(path, 'utf8');
      const rewritten = text.replace(tsSpecifier, '$1$2.js$3');
      if (rewritten !== text) writeFileSync(path, rewritten);
    }
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = performance.now();
  const built = await buildLib(process.argv.includes('--force'));
  console.log(
    built
      ? `library built into dist/ in ${Math.round(performance.now() - started)} ms`
      : 'library is up to date (dist/)',
  );
}
