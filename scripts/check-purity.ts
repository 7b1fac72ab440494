/**
 * Architecture lint: protocol cores, the kernel, the simulator and the checker must stay
 * deterministic and runtime-neutral, and dependencies must point one way
 * (kernel <- cores <- sim/runtime <- server <- cli/web).
 *
 * Biome's restricted-globals rule cannot see `Math.random`, `async` functions or a
 * `Promise` type, so this walks the TypeScript AST instead. Exit 1 on any finding.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');

/** Folders whose code must be pure (no time, randomness, I/O or concurrency of its own). */
const pureLayers = new Set([
  'kernel',
  'kv',
  'replica',
  'raft',
  'paxos',
  'gossip',
  'totem',
  'sim',
  'check',
]);

/** Which src folders each layer may import. A layer may always import itself. */
const allowedImports: Record<string, readonly string[]> = {
  kernel: [],
  kv: ['kernel'],
  replica: ['kernel', 'kv', 'raft', 'paxos'],
  raft: ['kernel'],
  paxos: ['kernel'],
  gossip: ['kernel'],
  totem: ['kernel'],
  check: ['kernel'],
  sim: ['replica', 'kernel', 'kv', 'check', 'raft', 'paxos', 'gossip', 'totem'],
  runtime: ['replica', 'kernel', 'kv', 'raft', 'paxos', 'gossip', 'totem'],
  client: ['kernel', 'kv'],
  server: [
    'replica',
    'client',
    'kernel',
    'kv',
    'check',
    'raft',
    'paxos',
    'gossip',
    'totem',
    'runtime',
  ],
  cli: [
    'replica',
    'client',
    'kernel',
    'kv',
    'check',
    'raft',
    'paxos',
    'gossip',
    'totem',
    'sim',
    'runtime',
    'server',
  ],
  web: ['replica', 'client', 'kernel', 'kv', 'check', 'raft', 'paxos', 'gossip', 'totem', 'sim'],
  // src/index.ts, the package's root entry: a selection of the public layers' entries.
  'index.ts': ['kernel', 'raft', 'paxos', 'kv', 'check', 'client', 'gossip', 'totem'],
};

const bannedGlobals = new Map<string, string>([
  ['setTimeout', 'timers'],
  ['setInterval', 'timers'],
  ['setImmediate', 'timers'],
  ['clearTimeout', 'timers'],
  ['clearInterval', 'timers'],
  ['clearImmediate', 'timers'],
  ['queueMicrotask', 'concurrency'],
  ['Date', 'wall clock'],
  ['performance', 'wall clock'],
  ['process', 'process I/O'],
  ['require', 'module I/O'],
  ['Promise', 'promises'],
  ['fetch', 'network I/O'],
  ['crypto', 'randomness'],
]);

const isTest = (file: string) => /\.(test|spec)\.ts$/.test(file);

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else if (path.endsWith('.ts')) yield path;
  }
}

interface Finding {
  file: string;
  line: number;
  why: string;
}

function layerOf(file: string): string | undefined {
  const rel = relative(src, file);
  if (rel.startsWith('..')) return undefined;
  return rel.split(sep)[0];
}

function checkImport(file: string, spec: string, layer: string, pure: boolean): string | undefined {
  if (spec.startsWith('node:'))
    return pure ? `imports ${spec}: pure layers use no node: module` : undefined;
  if (!spec.startsWith('.')) {
    return pure ? `imports package '${spec}': pure layers import only project code` : undefined;
  }
  const target = layerOf(join(file, '..', spec));
  if (target === undefined || target === layer) return undefined;
  const allowed = allowedImports[layer] ?? [];
  return allowed.includes(target) ? undefined : `layer '${layer}' may not import layer '${target}'`;
}

function isPropertyName(node: ts.Identifier): boolean {
  const parent = node.parent;
  if (ts.isPropertyAccessExpression(parent) && parent.name === node) return true;
  if ((ts.isPropertyAssignment(parent) || ts.isPropertySignature(parent)) && parent.name === node) {
    return true;
  }
  if ((ts.isMethodDeclaration(parent) || ts.isMethodSignature(parent)) && parent.name === node) {
    return true;
  }
  if (ts.isPropertyDeclaration(parent) && parent.name === node) return true;
  return false;
}

function checkFile(file: string): Finding[] {
  const layer = layerOf(file);
  if (layer === undefined) return [];
  const pure = pureLayers.has(layer) && !isTest(file);
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const findings: Finding[] = [];
  const report = (node: ts.Node, why: string) => {
    const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    findings.push({ file: relative(root, file), line: line + 1, why });
  };
  const visit = (node: ts.Node) => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier) &&
      !isTest(file)
    ) {
      const why = checkImport(file, node.moduleSpecifier.text, layer, pure);
      if (why) report(node, why);
    }
    if (pure) {
      if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        report(node, 'dynamic import()');
      }
      if (ts.isIdentifier(node) && bannedGlobals.has(node.text) && !isPropertyName(node)) {
        report(
          node,
          `uses ${node.text} (${bannedGlobals.get(node.text)}): pass it in as an argument`,
        );
      }
      if (
        ts.isPropertyAccessExpression(node) &&
        ts.isIdentifier(node.expression) &&
        node.expression.text === 'Math' &&
        node.name.text === 'random'
      ) {
        report(node, 'uses Math.random: take a kernel Rng as an argument');
      }
      if (ts.isAwaitExpression(node))
        report(node, 'uses await: cores are synchronous state machines');
      const mods = ts.canHaveModifiers(node) ? ts.getModifiers(node) : undefined;
      if (mods?.some((m) => m.kind === ts.SyntaxKind.AsyncKeyword)) {
        report(node, 'async function: cores are synchronous state machines');
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return findings;
}

let findings: Finding[] = [];
for (const file of walk(src)) findings = findings.concat(checkFile(file));
for (const f of findings) console.error(`${f.file}:${f.line}: ${f.why}`);
if (findings.length > 0) {
  console.error(`check-purity: ${findings.length} finding(s)`);
  process.exit(1);
}
console.log('check-purity: kernel, cores, simulator and checker are pure; layering holds');
