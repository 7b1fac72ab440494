#!/usr/bin/env node
/**
 * Compiles src/ (not the web app, not tests) to JavaScript and .d.ts in dist/ with
 * tsconfig.build.json, when dist is missing or older than a source file (`--force`: always).
 * bin/quorate.mjs asks `libBuildIsStale()` in a clone: it runs dist only when it is current,
 * so an edited source is never shadowed by an old build.
 *
 * dist/.lib-stamp is written after a complete build and removed before one starts: a
 * `quorate` started mid-build sees a stale build and runs the sources instead.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dist = join(repo, 'dist');
const stamp = join(dist, '.lib-stamp');
/** What the compiled library is made of, besides src/ (the web app is Vite's). */
const configFiles = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== join(repo, 'src', 'web')) newest = Math.max(newest, newestSource(path));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/** Whether dist lacks a complete build newer than every source and config file. */
export function libBuildIsStale() {
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  const configs = configFiles.map((f) => join(repo, f)).filter((f) => existsSync(f));
  return (
    newestSource(join(repo, 'src')) > built || configs.some((f) => statSync(f).mtimeMs > built)
  );
}

/** Builds when stale or forced; returns whether it built. Throws when tsc fails. */
export function buildLib(force = false) {
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
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  return true;
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
  const built = buildLib(process.argv.includes('--force'));
  console.log(
    built
      ? `library built into dist/ in ${Math.round(performance.now() - started)} ms`
      : 'library is up to date (dist/)',
  );
}
