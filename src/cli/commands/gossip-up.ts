import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { packageRoot } from '../package-root.ts';
import { EXIT, UsageError } from '../program.ts';

/**
 * `quorate up --protocol gossip --nodes N`: N gossip agents on 127.0.0.1 as child
 * processes. Agent i (from 1) serves its HTTP API on portBase + 2(i-1) and gossips (UDP
 * and TCP) on the next port; agent 1 is the seed the others join through. Data in
 * <data>/gossip-<i>, logs in <data>/gossip-<i>.log, the secret in <data>/secret.
 * Ctrl-C: every agent leaves gracefully (SIGTERM), then exits.
 */
export interface GossipUpFlags {
  readonly nodes: number;
  readonly data: string;
  readonly portBase: number;
  readonly json?: true;
  readonly logLevel?: string;
}

export const GOSSIP_UP_NODES_MAX = 50;
const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

interface Running {
  readonly index: number;
  readonly child: ChildProcess;
  readonly url: string;
  readonly peer: string;
  readonly id: number;
}

async function secretFile(dataDir: string): Promise<string> {
  const path = join(dataDir, 'secret');
  if (!existsSync(path)) {
    await writeFile(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  }
  if ((await readFile(path, 'utf8')).trim().length < 16) {
    throw new UsageError(`${path} holds a secret shorter than 16 bytes`);
  }
  return path;
}

function startOne(
  index: number,
  dataDir: string,
  secret: string,
  flags: GossipUpFlags,
): Promise<Running> {
  const http = flags.portBase + 2 * (index - 1);
  const args = [
    join(packageRoot(), 'bin', 'quorate.mjs'),
    'node',
    '--protocol',
    'gossip',
    '--data',
    join(dataDir, `gossip-${index}`),
    '--client-listen',
    `${HOST}:${http}`,
    '--peer-listen',
    `${HOST}:${http + 1}`,
    '--secret-file',
    secret,
    ...(index === 1 ? [] : ['--join', `${HOST}:${flags.portBase + 1}`]),
    ...(flags.logLevel === undefined ? [] : ['--log-level', flags.logLevel]),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr?.pipe(createWriteStream(join(dataDir, `gossip-${index}.log`), { flags: 'a' }));
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`gossip agent ${index} was not ready in ${READY_TIMEOUT_MS} ms`));
    }, READY_TIMEOUT_MS);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /quorate node (\d+) ready: client (\S+) peer (\S+)/.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      ok({ index, child, id: Number(m[1]), url: m[2]!, peer: m[3]! });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`gossip agent ${index} exited (${code}) before it was ready; see its log`));
    });
  });
}

async function stopAll(agents: readonly Running[]): Promise<void> {
  await Promise.all(
    agents.map(async (a) => {
      if (a.child.exitCode !== null || a.child.signalCode !== null || a.child.pid === undefined)
        return;
      const gone = new Promise<void>((r) => a.child.once('exit', () => r()));
      process.kill(a.child.pid, 'SIGTERM');
      const late = setTimeout(() => {
        if (a.child.exitCode === null && a.child.pid !== undefined)
          process.kill(a.child.pid, 'SIGKILL');
      }, STOP_GRACE_MS);
      await gone;
      clearTimeout(late);
    }),
  );
}

export async function runGossipUp(flags: GossipUpFlags): Promise<number> {
  if (flags.nodes > GOSSIP_UP_NODES_MAX) {
    throw new UsageError(`--nodes must be at most ${GOSSIP_UP_NODES_MAX} with --protocol gossip`);
  }
  if (flags.portBase + 2 * flags.nodes > 65_535) throw new UsageError('ports run past 65535');
  const dataDir = resolve(flags.data);
  await mkdir(dataDir, { recursive: true });
  const secret = await secretFile(dataDir);
  const agents: Running[] = [];
  try {
    agents.push(await startOne(1, dataDir, secret, flags));
    const rest = await Promise.allSettled(
      Array.from({ length: flags.nodes - 1 }, (_, i) => startOne(i + 2, dataDir, secret, flags)),
    );
    for (const r of rest) if (r.status === 'fulfilled') agents.push(r.value);
    const failed = rest.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  } catch (err) {
    await stopAll(agents);
    process.stderr.write(`quorate up: ${(err as Error).message}\n`);
    return EXIT.usage;
  }
  agents.sort((a, b) => a.index - b.index);
  if (flags.json === true) {
    const rows = agents.map((a) => ({
      index: a.index,
      id: a.id,
      url: a.url,
      gossip: a.peer,
      pid: a.child.pid,
    }));
    process.stdout.write(`${JSON.stringify({ protocol: 'gossip', agents: rows })}\n`);
  } else {
    process.stdout.write(`${agents.length} gossip agents up (data in ${dataDir}):\n`);
    for (const a of agents)
      process.stdout.write(`  agent ${a.index}: id ${a.id} http ${a.url} gossip ${a.peer}\n`);
    const first = agents[0]!.url;
    process.stdout.write(
      `try:\n  quorate members --endpoint ${first}\n  quorate event watch --endpoint ${first}\n` +
        `  quorate event send hello world --endpoint ${agents[agents.length - 1]!.url}\n` +
        `  curl ${first}/metrics\nCtrl-C: every agent leaves gracefully, then stops.\n`,
    );
  }
  const signal = await new Promise<NodeJS.Signals>((r) => {
    process.once('SIGINT', () => r('SIGINT'));
    process.once('SIGTERM', () => r('SIGTERM'));
    for (const a of agents) {
      a.child.once('exit', (code, sig) => {
        process.stderr.write(
          `quorate up: gossip agent ${a.index} ended (${sig ?? `exit code ${code}`})\n`,
        );
      });
    }
  });
  process.stderr.write(`quorate up: ${signal}, stopping ${agents.length} agents\n`);
  await stopAll(agents);
  return EXIT.ok;
}
