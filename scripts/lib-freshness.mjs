/**
 * Whether dist/ holds a complete library build newer than every source (build-lib.mjs
 * writes dist/.lib-stamp last). Asked by bin/quorate.mjs at every start in a clone, so it
 * imports nothing but node:fs and node:path.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dist = join(repo, 'dist');
const stamp = join(dist, '.lib-stamp');
/** What the compiled library is made of, besides src/ (the web app is Vite's). */
const configFiles = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

/**
 * The newest mtime of the library's sources (src/ without tests and the web app, which is
 * Vite's). Runs at every `quorate` start in a clone, so it walks the tree by hand with file
 * types from readdir: readdirSync's own `recursive` option joins and normalises every path
 * in JavaScript and cost about four times the CPU (12 ms against 3 ms for 270 sources).
 */
function newestSource(dir, top = true) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const name = entry.name;
    let mtime = 0;
    if (entry.isDirectory()) {
      if (top && name === 'web') continue;
      mtime = newestSource(`${dir}/${name}`, false);
    } else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) {
      mtime = statSync(`${dir}/${name}`).mtimeMs;
    }
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
