/**
 * TEST HARNESS ONLY: real Raft and Multi-Paxos engines on loopback with no HTTP server, and
 * bare peer transports whose messages a test scripts (see peer-forward.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../../test/e2e/ports.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { TcpTransport } from '../../runtime/transport/tcp-transport.ts';
import type { KvEngine, MemberAddress } from '../engine.ts';
import type { EngineMetrics } from '../metrics.ts';
import { MultiPaxosEngine } from '../multipaxos-engine.ts';
import { RaftEngine } from '../raft-engine.ts';

export const SECRET = 'forward-test-secret-0123456789';
export const fastRaft = {
  electionTimeoutMinMs: 150,
  electionTimeoutMaxMs: 300,
  heartbeatIntervalMs: 30,
};
/** A follower that never campaigns while a scripted peer plays its leader. */
export const patientRaft = { electionTimeoutMinMs: 20_000, electionTimeoutMaxMs: 30_000 };

export type Protocol = 'raft' | 'multipaxos';
export type Engine = RaftEngine | MultiPaxosEngine;

export interface Setup {
  readonly dir: string;
  readonly members: MemberAddress[];
  readonly engines: Map<NodeId, Engine>;
  readonly peers: TcpTransport<unknown>[];
}

const setups: Setup[] = [];

/** Stops every engine and scripted peer the tests set up, and deletes their data; after each test. */
export async function cleanupSetups(): Promise<void> {
  for (const s of setups.splice(0)) {
    for (const e of s.engines.values()) await e.stop();
    for (const p of s.peers) await p.stop();
    await rm(s.dir, { recursive: true, force: true });
  }
}

export async function setup(n: number): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'quorate-engines-'));
  const ports = await freePorts(2 * n);
  const members = Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    peerAddress: `127.0.0.1:${ports[i]}`,
    // Nothing listens here: a relay over HTTP would fail.
    clientUrl: `http://127.0.0.1:${ports[n + i]}`,
  }));
  const s: Setup = { dir, members, engines: new Map(), peers: [] };
  setups.push(s);
  return s;
}

export interface EngineExtra {
  readonly callTimeoutMs?: number;
  readonly metrics?: EngineMetrics;
  readonly raft?: Partial<typeof fastRaft>;
  /** Raft only: the member list to start with (all of the setup's by default). */
  readonly members?: MemberAddress[];
  /** Raft only: start with an empty configuration, to be added by the leader. */
  readonly join?: boolean;
  /** Raft only: called when the engine learns it was removed from the cluster. */
  readonly onRemoved?: (detail: { readonly toldBy: NodeId }) => void;
}

export async function startEngine(
  s: Setup,
  protocol: Protocol,
  id: NodeId,
  extra: EngineExtra = {},
): Promise<Engine> {
  const common = {
    id,
    dataDir: join(s.dir, `n${id}`),
    members: extra.members ?? s.members,
    secret: SECRET,
    ...(extra.callTimeoutMs === undefined ? {} : { callTimeoutMs: extra.callTimeoutMs }),
    ...(extra.metrics === undefined ? {} : { metrics: extra.metrics }),
  };
  const engine =
    protocol === 'raft'
      ? await RaftEngine.open({
          ...common,
          raft: { ...fastRaft, ...extra.raft },
          ...(extra.onRemoved === undefined ? {} : { onRemoved: extra.onRemoved }),
          ...(extra.join === undefined ? {} : { join: extra.join }),
        })
      : await MultiPaxosEngine.open(common);
  await engine.start();
  s.engines.set(id, engine);
  return engine;
}

/** A bare peer transport standing in for member `id`: the test scripts what it says. */
export async function scriptedPeer(s: Setup, id: NodeId): Promise<Inbox> {
  const self = s.members.find((m) => m.id === id) as MemberAddress;
  const [host, port] = self.peerAddress.split(':') as [string, string];
  const transport = new TcpTransport<unknown>({
    id,
    secret: SECRET,
    listen: { host, port: Number(port) },
    log: () => {},
  });
  const inbox = new Inbox(transport);
  transport.onMessage((from, msg) => inbox.push(from, msg));
  await transport.start();
  for (const m of s.members) {
    if (m.id === id) continue;
    const [h, p] = m.peerAddress.split(':') as [string, string];
    transport.addPeer(m.id, { host: h, port: Number(p) });
  }
  s.peers.push(transport);
  return inbox;
}

export class Inbox {
  readonly received: { from: NodeId; msg: { type?: unknown } }[] = [];
  constructor(readonly transport: TcpTransport<unknown>) {}

  push(from: NodeId, msg: unknown): void {
    this.received.push({ from, msg: msg as { type?: unknown } });
  }

  /** The `nth` (from 1) message of `type` received, once it is here. */
  next<M>(type: string, nth = 1): Promise<M> {
    return waitFor(`message ${nth} of type ${type}`, () => {
      const found = this.received.filter((r) => r.msg.type === type);
      return found[nth - 1]?.msg as M | undefined;
    });
  }

  count(type: string): number {
    return this.received.filter((r) => r.msg.type === type).length;
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined,
  timeoutMs = 8000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function leaderOf(s: Setup): Engine | undefined {
  for (const e of s.engines.values()) if (e.status().role === 'leader') return e;
  return undefined;
}

/**
 * The leader once every running engine names it. At start-up two engines may each believe
 * they lead for a moment (Multi-Paxos proposers race), so one engine's role alone does not
 * say which of the others will follow it.
 */
export function agreedLeader(s: Setup): Engine | undefined {
  const leader = leaderOf(s);
  if (leader === undefined) return undefined;
  for (const e of s.engines.values()) if (e.status().leader !== leader.id) return undefined;
  return leader;
}

export function followerOf(s: Setup, leader: KvEngine): Engine {
  const follower = [...s.engines.values()].find((e) => e !== leader);
  if (follower === undefined) throw new Error('no follower');
  return follower;
}
