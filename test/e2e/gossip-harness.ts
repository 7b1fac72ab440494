import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Real gossip agents as child processes (`quorate node --protocol gossip`), for the e2e
 * tests and `npm run bench:gossip`. Every process is stopped by its pid.
 */
const BIN = new URL('../../bin/quorate.mjs', import.meta.url).pathname;

export interface Agent {
  readonly name: string;
  readonly dir: string;
  readonly peerPort: number;
  readonly child: ChildProcess;
  readonly id: number;
  readonly url: string;
  readonly peer: string;
}

export interface AgentSpec {
  readonly name: string;
  readonly root: string;
  readonly peerPort: number;
  readonly join: readonly string[];
  readonly extraArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
}

export function writeSecret(root: string): string {
  const path = join(root, 'secret');
  writeFileSync(path, 'gossip-e2e-cluster-secret-0123456789\n', { mode: 0o600 });
  return path;
}

/** Starts an agent and resolves once it prints its ready line. */
export function startAgent(spec: AgentSpec): Promise<Agent> {
  const dir = join(spec.root, spec.name);
  const args = [
    BIN,
    'node',
    '--protocol',
    'gossip',
    '--data',
    dir,
    '--client-listen',
    '127.0.0.1:0',
    '--peer-listen',
    `127.0.0.1:${spec.peerPort}`,
    '--secret-file',
    join(spec.root, 'secret'),
    '--log-level',
    'warn',
    ...(spec.join.length === 0 ? [] : ['--join', spec.join.join(',')]),
    ...(spec.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8_192) stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${spec.name} not ready in time: ${stderr}`));
    }, spec.readyTimeoutMs ?? 60_000);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /quorate node (\d+) ready: client (\S+) peer (\S+)/.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      resolve({
        name: spec.name,
        dir,
        peerPort: spec.peerPort,
        child,
        id: Number(m[1]),
        url: m[2]!,
        peer: m[3]!,
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${spec.name} exited ${code} before ready: ${stderr}`));
    });
  });
}

/** SIGKILL, or SIGTERM and wait for the exit (bounded); by pid. */
export async function stopAgent(
  a: Agent,
  signal: 'SIGKILL' | 'SIGTERM',
  waitMs = 10_000,
): Promise<void> {
  if (a.child.exitCode !== null || a.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => a.child.once('exit', () => resolve()));
  if (a.child.pid !== undefined) process.kill(a.child.pid, signal);
  const timer = new Promise<void>((resolve) => setTimeout(resolve, waitMs));
  await Promise.race([exited, timer]);
  if (a.child.exitCode === null && a.child.signalCode === null && a.child.pid !== undefined) {
    process.kill(a.child.pid, 'SIGKILL');
    await exited;
  }
}

export interface MemberRow {
  readonly id: number;
  readonly status: 'alive' | 'suspect' | 'dead' | 'left';
  readonly incarnation: number;
}

export async function membersOf(url: string): Promise<MemberRow[] | undefined> {
  try {
    const res = await fetch(`${url}/v1/members`, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) return undefined;
    return ((await res.json()) as { members: MemberRow[] }).members;
  } catch {
    return undefined;
  }
}

export async function publish(url: string, name: string, payload: string): Promise<Response> {
  return fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, payload }),
  });
}

export interface FeedEvent {
  readonly type: string;
  readonly name?: string;
  readonly origin?: number;
}

export async function eventsOf(url: string): Promise<FeedEvent[] | undefined> {
  try {
    const res = await fetch(`${url}/v1/events?from=1`, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) return undefined;
    return ((await res.json()) as { items: FeedEvent[] }).items;
  } catch {
    return undefined;
  }
}

/** Polls `check` every `everyMs` until it returns a value or `timeoutMs` passes. */
export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() >= until) return undefined;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
