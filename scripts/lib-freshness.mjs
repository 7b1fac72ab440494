/**
 * Whether dist/ holds a complete library build newer than every source (build-lib.mjs
 * writes dist/.lib-stamp last). Asked by bin/quorate.mjs at every start in a clone, so it
 * imports nothing but node:fs and node:path.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dist = join(repo, 'dist');
const stamp = join(dist, '.lib-stamp');
/** What the compiled library is made of, besides src/ (the web app is Vite's). */
const configFiles = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

/**
 * The newest mtime of the library's sources. Runs at every `quorate` start in a clone, so
 * it is one recursive listing and a stat per file, with no path normalisation (join() per
 * entry cost more than the stats).
 */
function newestSource(src) {
  let newest = 0;
  for (const rel of readdirSync(src, { recursive: true })) {
    if (!rel.endsWith('.ts') || rel.endsWith('.test.ts') || rel.startsWith(`web${sep}`)) continue;
    const mtime = statSync(`${src}${sep}${rel}`).mtimeMs;
    if (mtime > newest) newest = mtime;
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
