import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** How far above a module the package root may be (src/cli/commands, dist/cli-bundle...). */
const depthMax = 6;

/**
 * The directory holding this package's bin/quorate.mjs: the clone or the installed package.
 * Found by walking up, not by a fixed relative path, because the same module runs from
 * src/cli, from dist/cli and from the CLI bundle's flat dist/cli-bundle.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i <= depthMax; i++) {
    if (existsSync(join(dir, 'bin', 'quorate.mjs'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`no bin/quorate.mjs within ${depthMax} levels above ${import.meta.url}`);
}

/** This package's version, from its package.json (the clone's or the installed one). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
