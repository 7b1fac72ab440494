import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { QuorateClient } from '../../client/client.ts';
import { isNodeId, NO_NODE, type NodeId } from '../../kernel/ids.ts';
import { type EngineStatus, type MemberStatus, RefusedError } from '../engine.ts';
import { parsePeerAddress } from '../raft-members.ts';
import { type EtcdContext, headerOf } from './context.ts';
import { etcdErrors, unimplemented } from './errors.ts';
import {
  AlarmAction,
  type AlarmRequest,
  type AlarmResponse,
  type Member,
  type MemberAddRequest,
  type MemberAddResponse,
  type MemberIdRequest,
  type MembersResponse,
  type StatusResponse,
} from './types.ts';

/** What the Cluster and Maintenance services need beyond the shared context. */
export interface ClusterContext extends EtcdContext {
  /** This node's own gRPC URL, listed as its clientURLs. */
  readonly selfGrpcUrl: () => string | undefined;
  /** Other members' gRPC URLs where known (quorate up passes them); else none is listed. */
  readonly grpcUrls: ReadonlyMap<NodeId, string>;
  readonly tls: boolean;
  /** The node's data directory: its size is Status's dbSize. */
  readonly dataDir: string | undefined;
  /** Status's version: the etcd API version served, and ours. */
  readonly version: string;
  /** PEM of the cluster's CA, to relay a membership change to an https leader. */
  readonly ca: string | undefined;
  readonly relayTimeoutMs: number;
}

function memberOf(ctx: ClusterContext, m: MemberStatus): Member {
  const scheme = ctx.tls ? 'https' : 'http';
  const grpc = m.id === ctx.engine.id ? ctx.selfGrpcUrl() : ctx.grpcUrls.get(m.id);
  return {
    ID: m.id,
    name: `node-${m.id}`,
    peerURLs: [`${scheme}://${m.peerAddress}`],
    clientURLs: grpc === undefined ? [] : [grpc],
    isLearner: m.role === 'learner',
  };
}

function membersOf(ctx: ClusterContext, status: EngineStatus): Member[] {
  return status.members.map((m) => memberOf(ctx, m));
}

export function memberList(ctx: ClusterContext): MembersResponse {
  const status = ctx.engine.status();
  return { header: headerOf(ctx, status.revision), members: membersOf(ctx, status) };
}

/**
 * A membership change at the leader: the engine carries it out there, and a follower relays
 * it over the leader's HTTP API (as the HTTP routes do), since engines do not forward them.
 */
async function atLeader(
  ctx: ClusterContext,
  local: () => Promise<void>,
  relay: (client: QuorateClient) => Promise<void>,
): Promise<void> {
  try {
    await local();
  } catch (err) {
    if (
      !(err instanceof RefusedError) ||
      err.refusal.type !== 'notLeader' ||
      err.refusal.leader === NO_NODE ||
      err.leaderClientUrl === undefined
    ) {
      throw err;
    }
    const client = new QuorateClient({
      endpoints: [err.leaderClientUrl],
      timeoutMs: ctx.relayTimeoutMs,
      retries: 0,
      ...(ctx.ca === undefined ? {} : { ca: ctx.ca }),
    });
    try {
      await relay(client);
    } catch (relayErr) {
      const why = relayErr instanceof Error ? relayErr.message : String(relayErr);
      if (/not a member|no such member/.test(why)) throw etcdErrors.memberNotFound();
      throw etcdErrors.notLeader(`relaying to the leader failed: ${why}`);
    }
  }
}

/** Waits (bounded) until this node's view of the members satisfies `done`. */
async function settled(ctx: ClusterContext, done: (s: EngineStatus) => boolean): Promise<void> {
  const until = Date.now() + ctx.relayTimeoutMs;
  while (!done(ctx.engine.status()) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Ids tried for a new member before giving up on retired ones. */
const MEMBER_ID_TRIES_MAX = 16;

/**
 * MemberAdd as a learner. etcd names a member by its peer URLs only; a quorate member also
 * has an HTTP client URL (for relayed calls), so peerURLs gives the peer URL first and the
 * member's HTTP client URL second. The id is the next after every member's.
 */
export async function memberAdd(
  ctx: ClusterContext,
  req: MemberAddRequest,
): Promise<MemberAddResponse> {
  if (!req.isLearner) {
    throw unimplemented('adding a voting member at once; add it as a learner, then promote it');
  }
  const [peerUrl, clientUrl, ...extra] = req.peerURLs;
  const peer = peerUrl === undefined ? undefined : urlHostPort(peerUrl);
  if (peer === undefined || clientUrl === undefined || extra.length > 0 || !isHttpUrl(clientUrl)) {
    throw etcdErrors.memberBadUrls(
      'give two URLs: the peer URL, then the HTTP client URL (e.g. http://h:2382,http://h:2381)',
    );
  }
  const status = ctx.engine.status();
  let id = Math.max(0, ...status.members.map((m) => m.id)) + 1;
  for (let attempt = 0; ; attempt++, id++) {
    const member = { id, peerAddress: peer, clientUrl: clientUrl.replace(/\/$/, '') };
    try {
      await atLeader(
        ctx,
        () => ctx.engine.addLearner(member),
        (c) => c.addLearner(member.id, member.peerAddress, member.clientUrl),
      );
      break;
    } catch (err) {
      const retired = err instanceof RefusedError && /retired/.test(err.message);
      if (!retired || attempt + 1 >= MEMBER_ID_TRIES_MAX) throw err;
    }
  }
  await settled(ctx, (s) => s.members.some((m) => m.id === id));
  const after = ctx.engine.status();
  const added: MemberStatus = after.members.find((m) => m.id === id) ?? {
    id,
    peerAddress: peer,
    clientUrl,
    role: 'learner',
  };
  return {
    header: headerOf(ctx, after.revision),
    member: memberOf(ctx, added),
    members: membersOf(ctx, after),
  };
}

function memberIdOf(ctx: ClusterContext, req: MemberIdRequest): MemberStatus {
  if (!isNodeId(req.ID)) throw etcdErrors.memberNotFound();
  const member = ctx.engine.status().members.find((m) => m.id === req.ID);
  if (member === undefined) throw etcdErrors.memberNotFound();
  return member;
}

export async function memberRemove(
  ctx: ClusterContext,
  req: MemberIdRequest,
): Promise<MembersResponse> {
  const member = memberIdOf(ctx, req);
  await atLeader(
    ctx,
    () => ctx.engine.remove(member.id),
    (c) => c.remove(member.id),
  );
  await settled(ctx, (s) => !s.members.some((m) => m.id === member.id));
  return memberList(ctx);
}

export async function memberPromote(
  ctx: ClusterContext,
  req: MemberIdRequest,
): Promise<MembersResponse> {
  const member = memberIdOf(ctx, req);
  if (member.role !== 'learner') throw etcdErrors.memberNotLearner();
  try {
    await atLeader(
      ctx,
      () => ctx.engine.promote(member.id),
      (c) => c.promote(member.id),
    );
  } catch (err) {
    if (err instanceof RefusedError && err.refusal.type === 'conflict') {
      throw etcdErrors.learnerNotReady(err.message);
    }
    throw err;
  }
  await settled(ctx, (s) => s.members.some((m) => m.id === member.id && m.role === 'voter'));
  return memberList(ctx);
}

function urlHostPort(text: string): string | undefined {
  if (!isHttpUrl(text)) return undefined;
  const url = new URL(text);
  const hostPort = url.host;
  return parsePeerAddress(hostPort) === undefined ? undefined : hostPort;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.port !== '';
  } catch {
    return false;
  }
}

/** Bytes under `dir`, files only; what etcd's dbSize is for its bolt file. */
async function sizeOf(dir: string, depthMax = 4): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const path = join(dir, name);
    try {
      const s = await stat(path);
      if (s.isFile()) total += s.size;
      else if (s.isDirectory() && depthMax > 0) total += await sizeOf(path, depthMax - 1);
    } catch {
      // removed while we looked (a compaction): it no longer counts
    }
  }
  return total;
}

export async function maintenanceStatus(ctx: ClusterContext): Promise<StatusResponse> {
  const status = ctx.engine.status();
  const size = ctx.dataDir === undefined ? 0 : await sizeOf(ctx.dataDir);
  const self = status.members.find((m) => m.id === status.id);
  return {
    header: headerOf(ctx, status.revision),
    version: ctx.version,
    dbSize: size,
    leader: status.leader,
    raftIndex: status.commitIndex,
    raftTerm: status.term,
    raftAppliedIndex: status.appliedIndex,
    errors: [],
    dbSizeInUse: size,
    isLearner: self?.role === 'learner',
  };
}

/** Alarm: quorate raises none (no space quota, no corruption alarm), so GET lists none. */
export function alarm(ctx: ClusterContext, req: AlarmRequest): AlarmResponse {
  if (req.action !== AlarmAction.get) throw unimplemented('raising or clearing alarms');
  return { header: headerOf(ctx, ctx.engine.status().revision), alarms: [] };
}
