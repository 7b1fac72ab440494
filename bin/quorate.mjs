#!/usr/bin/env node
// The CLI runs compiled JavaScript from dist/ (an installed package has nothing else). In a
// clone (src/ present) it does so only when dist is a complete build newer than every
// source; otherwise it runs the sources through tsx, a dev dependency, so an edit is never
// shadowed by an old build. `npm start` builds first; QUORATE_FROM_SOURCE=1 forces the
// sources.
import { existsSync } from 'node:fs';

const inClone = existsSync(new URL('../src/cli/main.ts', import.meta.url));
let fromSource = false;
if (inClone) {
  const { libBuildIsStale } = await import('../scripts/lib-freshness.mjs');
  fromSource = process.env.QUORATE_FROM_SOURCE === '1' || libBuildIsStale();
}
// A reader that stops early (`quorate kv list | head -1`) closes the pipe: that is a normal
// end for a command's output, not a crash.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(0);
  });
}
let main;
if (fromSource) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
} else {
  ({ main } = await import('../dist/cli-bundle/main.js'));
}
process.exitCode = await main(process.argv);
