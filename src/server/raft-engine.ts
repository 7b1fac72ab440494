import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { assert, unreachable } from '../kernel/assert.ts';
import type { Ready } from '../kernel/core.ts';
import { type ClientId, NO_NODE, type NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import type { KvChange, KvCommand, KvOp, KvResult } from '../kv/machine.ts';
import { defaultRaftOptions, type RaftOptions } from '../raft/config.ts';
import type { MembershipChange, RaftConfig, RaftEvent, RaftMsg } from '../raft/types.ts';
import {
  defaultReplicaOptions,
  RaftKvReplica,
  type RaftKvTypes,
  type ReplicaOptions,
  type ReplicaReply,
  type ReplicaRequest,
} from '../replica/raft-kv.ts';
import { TcpTransport, type TlsOptions } from '../runtime/transport/tcp-transport.ts';
import {
  type EngineStatus,
  type KvEngine,
  type MemberAddress,
  NotLeaderError,
  OverloadedError,
  type ReadConsistency,
  UnavailableError,
  type WatchHandle,
} from './engine.ts';
import { ApiError } from './errors.ts';
import type { EngineMetrics } from './metrics.ts';
import {
  encodeMemberRecord,
  guardReservedWrite,
  isReservedKey,
  MemberBook,
  memberKey,
} from './raft-members.ts';
import { RaftStorage } from './raft-storage.ts';

/**
 * A real Raft node: hosts a `RaftKvReplica` on the runtime (WAL, hard-state and snapshot
 * stores, TCP transport, timers) and serves it as a `KvEngine` to the HTTP API.
 *
 * The host loop follows the kernel's contract (kernel/core.ts): every input (timer tick, peer
 * message, client call) goes into the replica, then `pump` takes Ready batches one at a time:
 * persist everything (fdatasync), then send messages, answer clients, notify watchers, and
 * advance. Inputs that arrive during an fsync land in the next batch, which is how group
 * commit happens across concurrent clients.
 */
export interface RaftEngineOptions {
  readonly id: NodeId;
  readonly dataDir: string;
  /** Every member known at start (this node included), with its addresses. */
  readonly members: readonly MemberAddress[];
  /** Start with an empty configuration and wait to be added by the cluster's leader. */
  readonly join?: boolean;
  /** Cluster secret for the peer handshake (at least 16 bytes). */
  readonly secret: string | Uint8Array;
  /** Where the peer listener binds; the port of this member's peerAddress by default. */
  readonly peerListen?: { readonly host: string; readonly port: number };
  readonly tls?: TlsOptions;
  readonly raft?: Partial<Omit<RaftOptions<KvCommand>, 'sizeOf'>>;
  readonly replica?: Partial<ReplicaOptions>;
  /** How long a client call may wait for its answer before UnavailableError. */
  readonly callTimeoutMs?: number;
  /** Re-proposals of a write whose outcome came back unknown (same session and seq). */
  readonly unknownRetriesMax?: number;
  /** Client calls waiting for an answer at once; more get OverloadedError. */
  readonly callsMax?: number;
  readonly metrics?: EngineMetrics;
  readonly logger?: Logger;
  /** Called once when the node can no longer run safely (a failed fsync); it should exit. */
  readonly onFatal?: (err: unknown) => void;
  /** The node's monotonic clock in ms. */
  readonly clock?: () => number;
}

const defaults = { callTimeoutMs: 5000, unknownRetriesMax: 3, callsMax: 10_000 } as const;
/** Pause before retrying a call the leader refused for a passing reason (a transfer). */
const RETRY_PAUSE_MS = 25;
const silentMetrics: EngineMetrics = {
  observeFsync() {},
  proposal() {},
  commit() {},
  applyLag() {},
  election() {},
  leaderChange() {},
  bytesSent() {},
};

type Answer = ReplicaReply | { readonly type: 'timeout' };

interface Call {
  readonly resolve: (answer: Answer) => void;
  readonly timer: NodeJS.Timeout;
}

interface Watcher {
  readonly onChange: (change: KvChange) => void;
  /** Changes up to this revision were given to it. */
  revision: number;
}

const raftMsgTypes = new Set<string>([
  'requestVote',
  'requestVoteReply',
  'append',
  'appendReply',
  'heartbeat',
  'heartbeatReply',
  'snapshotChunk',
  'snapshotChunkReply',
  'timeoutNow',
]);

/** A KV command's byte size for Raft's flow control: close enough, stable, positive. */
function commandBytes(cmd: KvCommand): number {
  const op = cmd.op;
  const key = 'key' in op ? op.key.length : op.prefix.length;
  const value = 'value' in op ? op.value.length : 0;
  return 32 + 2 * (key + value);
}

export class RaftEngine implements KvEngine {
  readonly id: NodeId;
  private readonly calls = new Map<ClientId, Call>();
  private readonly watchers = new Set<Watcher>();
  private readonly clock: () => number;
  private readonly metrics: EngineMetrics;
  private readonly settings: typeof defaults;
  private readonly members: MemberBook;
  private nextClient = 1;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private pumping: Promise<void> | undefined;
  private running = false;
  private failure: unknown;
  private leader: NodeId = NO_NODE;
  private committed = 0;
  private notifiedRevision = 0;

  private constructor(
    private readonly replica: RaftKvReplica,
    private readonly storage: RaftStorage,
    private readonly transport: TcpTransport<RaftMsg<KvCommand>>,
    private readonly options: RaftEngineOptions,
  ) {
    this.id = options.id;
    this.clock = options.clock ?? (() => performance.now());
    this.metrics = options.metrics ?? silentMetrics;
    this.settings = { ...defaults };
    for (const name of Object.keys(defaults) as (keyof typeof defaults)[]) {
      const value = options[name] ?? defaults[name];
      assert(Number.isSafeInteger(value) && value >= 1, `${name} must be >= 1, got ${value}`);
      Object.assign(this.settings, { [name]: value });
    }
    const self = options.members.find((m) => m.id === options.id);
    assert(self !== undefined, `node ${options.id} is not in its own member list`);
    this.members = new MemberBook(self, options.members, (id, peer) => transport.addPeer(id, peer));
    this.committed = replica.status().commit;
  }

  /**
   * Opens the data directory and restores the node (hard state, newest snapshot, WAL after
   * it). Throws WalCorruptionError when a WAL record before the tail is damaged.
   */
  static async open(options: RaftEngineOptions): Promise<RaftEngine> {
    const metrics = options.metrics ?? silentMetrics;
    const bootstrap: RaftConfig = options.join
      ? { voters: [], learners: [] }
      : { voters: options.members.map((m) => m.id).sort((a, b) => a - b), learners: [] };
    const storage = await RaftStorage.open({
      dir: options.dataDir,
      id: options.id,
      bootstrap,
      walMetrics: { fsync: (ms) => metrics.observeFsync(ms / 1000) },
    });
    const raftOptions: RaftOptions<KvCommand> = {
      ...defaultRaftOptions<KvCommand>(commandBytes),
      ...options.raft,
    };
    const replica = RaftKvReplica.restore(
      options.id,
      storage.restored,
      raftOptions,
      Rng.fromSeed(randomInt(2 ** 47)),
      { ...defaultReplicaOptions, ...options.replica },
    );
    const self = options.members.find((m) => m.id === options.id);
    const listen = options.peerListen ?? peerListenOf(self?.peerAddress);
    const transport = new TcpTransport<RaftMsg<KvCommand>>({
      id: options.id,
      secret: options.secret,
      listen,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      log: (level, message) => options.logger?.[level]({ component: 'transport' }, message),
    });
    return new RaftEngine(replica, storage, transport, options);
  }

  /** Starts the peer listener and the timers. */
  async start(): Promise<void> {
    assert(!this.running, 'engine started twice');
    this.transport.onMessage((from, msg) => this.onPeerMessage(from, msg));
    await this.transport.start();
    this.running = true;
    this.members.reload(this.replica.machine);
    this.notifiedRevision = this.replica.machine.currentRevision;
    this.kick();
  }

  /** Finishes the batch being written, then closes the transport and the storage. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.pumping;
    for (const [client, call] of this.calls) {
      clearTimeout(call.timer);
      this.calls.delete(client);
      call.resolve({ type: 'timeout' });
    }
    await this.transport.stop();
    await this.storage.close();
  }

  // -------------------------------------------------------------------------------------
  // KvEngine

  async write(cmd: KvCommand): Promise<KvResult> {
    guardReservedWrite(cmd.op);
    return this.propose(cmd);
  }

  async read(
    op: Extract<KvOp, { f: 'get' } | { f: 'list' }>,
    consistency: ReadConsistency,
  ): Promise<KvResult> {
    if (consistency === 'stale') return withoutReserved(this.replica.machine.read(op));
    const deadline = this.clock() + this.settings.callTimeoutMs;
    for (;;) {
      const answer = await this.call(
        (id) => ({ type: 'kv', id, session: 0, seq: 0, op }),
        deadline,
      );
      if (answer.type === 'result') return withoutReserved(answer.result);
      await this.refusal(answer, deadline, 'read');
    }
  }

  watch(fromRevision: number, onChange: (change: KvChange) => void): WatchHandle | 'compacted' {
    const past = this.replica.machine.changesSince(fromRevision);
    if (past === undefined) return 'compacted';
    const watcher: Watcher = { onChange, revision: fromRevision };
    for (const change of past) {
      if (!isReservedKey(change.key)) onChange(change);
      watcher.revision = change.revision;
    }
    this.watchers.add(watcher);
    return { cancel: () => this.watchers.delete(watcher) };
  }

  status(): EngineStatus {
    const s = this.replica.status();
    const leading = s.role === 'leader';
    return {
      id: this.id,
      protocol: 'raft',
      role: s.role,
      term: s.term,
      leader: s.leader,
      leaderClientUrl: s.leader === NO_NODE ? undefined : this.members.clientUrl(s.leader),
      commitIndex: s.commit,
      appliedIndex: this.replica.machine.appliedIndex,
      revision: this.replica.machine.currentRevision,
      members: this.members.members(s.config),
      progress: leading
        ? [...s.progress].map(([id, p]) => ({
            id,
            match: p.match,
            next: p.next,
            state: p.state,
            recentActive: p.recentActive,
          }))
        : undefined,
    };
  }

  /**
   * Commits the member's addresses as a record in the replicated state, then the change:
   * by the time any replica commits the change it has applied the addresses.
   */
  async addLearner(member: MemberAddress): Promise<void> {
    this.requireLeader();
    await this.propose({
      session: 0,
      seq: 0,
      op: { f: 'put', key: memberKey(member.id), value: encodeMemberRecord(member) },
    });
    await this.changeMembership({ type: 'addLearner', node: member.id });
  }

  promote(id: NodeId): Promise<void> {
    return this.changeMembership({ type: 'promote', node: id });
  }

  remove(id: NodeId): Promise<void> {
    return this.changeMembership({ type: 'remove', node: id });
  }

  // -------------------------------------------------------------------------------------
  // Calls into the replica

  private async propose(cmd: KvCommand): Promise<KvResult> {
    const deadline = this.clock() + this.settings.callTimeoutMs;
    let unknowns = 0;
    this.metrics.proposal();
    for (;;) {
      const answer = await this.call(
        (id) => ({ type: 'kv', id, session: cmd.session, seq: cmd.seq, op: cmd.op }),
        deadline,
      );
      if (answer.type === 'result') return answer.result;
      if (answer.type === 'unknown') {
        // Without a session a retry could apply the command twice; with one it cannot.
        if (cmd.session === 0 || ++unknowns > this.settings.unknownRetriesMax) {
          throw new UnavailableError('the outcome of the write is unknown (a leader changed)');
        }
        continue;
      }
      await this.refusal(answer, deadline, 'write');
    }
  }

  /** Carries out a membership change; it resolves once the change is committed here. */
  private async changeMembership(change: MembershipChange): Promise<void> {
    const deadline = this.clock() + this.settings.callTimeoutMs;
    for (;;) {
      const answer = await this.call((id) => ({ type: 'changeMembership', id, change }), deadline);
      if (answer.type === 'done') return;
      if (answer.type === 'unknown') {
        if (changeVisible(this.replica.status().config, change)) return;
        continue;
      }
      if (answer.type === 'rejected') {
        const reason = answer.reason;
        if (reason === 'invalid-change' && changeVisible(this.replica.status().config, change)) {
          return; // an earlier attempt of this very change went through
        }
        if (reason === 'invalid-change' || reason === 'unknown-peer' || reason === 'not-a-voter') {
          throw new ApiError(409, 'invalid-request', `membership change refused: ${reason}`);
        }
      }
      await this.refusal(answer, deadline, 'write');
    }
  }

  /**
   * Handles an answer that is not a result: throws for final ones, or waits a moment and
   * returns for ones worth retrying (a passing refusal) while the deadline allows.
   */
  private async refusal(answer: Answer, deadline: number, kind: 'read' | 'write'): Promise<void> {
    switch (answer.type) {
      case 'notLeader':
        throw new NotLeaderError(answer.leader, this.members.clientUrl(answer.leader));
      case 'timeout':
        throw new UnavailableError(`no answer within ${this.settings.callTimeoutMs} ms`);
      case 'rejected':
        if (
          answer.reason === 'overloaded' ||
          answer.reason === 'uncommitted-cap' ||
          answer.reason === 'read-cap'
        ) {
          throw new OverloadedError(answer.reason);
        }
        break;
      case 'unknown':
        if (kind === 'read') break;
        throw new UnavailableError('the outcome is unknown');
      case 'result':
      case 'done':
        throw new Error(`unexpected answer '${answer.type}' to a ${kind}`);
      default:
        unreachable(answer, 'answer');
    }
    if (this.clock() + RETRY_PAUSE_MS >= deadline) {
      throw new UnavailableError(`still refused (${describe(answer)}) until the deadline`);
    }
    await new Promise((wake) => setTimeout(wake, RETRY_PAUSE_MS));
  }

  private requireLeader(): void {
    const s = this.replica.status();
    if (s.role !== 'leader') throw new NotLeaderError(s.leader, this.members.clientUrl(s.leader));
  }

  /** Hands one request to the replica and waits for its answer, or for `deadline`. */
  private call(build: (id: number) => ReplicaRequest, deadline: number): Promise<Answer> {
    if (this.failure !== undefined || !this.running) {
      return Promise.reject(new UnavailableError('the node is not running'));
    }
    if (this.calls.size >= this.settings.callsMax) {
      return Promise.reject(new OverloadedError(`${this.calls.size} calls waiting`));
    }
    const client = this.nextClient++;
    return new Promise<Answer>((resolve) => {
      const timer = setTimeout(
        () => {
          this.calls.delete(client);
          resolve({ type: 'timeout' });
        },
        Math.max(1, deadline - this.clock()),
      );
      this.calls.set(client, { resolve, timer });
      this.replica.request(this.clock(), client, build(client));
      this.kick();
    });
  }

  // -------------------------------------------------------------------------------------
  // Host loop

  private onPeerMessage(from: NodeId, msg: RaftMsg<KvCommand>): void {
    if (!this.running) return;
    const type = (msg as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !raftMsgTypes.has(type)) {
      this.options.logger?.warn({ from, type }, 'dropped a peer message of unknown shape');
      return;
    }
    this.replica.receive(this.clock(), from, msg);
    this.kick();
  }

  private kick(): void {
    if (this.pumping !== undefined || !this.running) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      this.schedule();
    });
  }

  /** Takes Ready batches one at a time until there are none: persist, then act, then advance. */
  private async pump(): Promise<void> {
    try {
      for (let rd = this.replica.ready(); rd !== undefined; rd = this.replica.ready()) {
        await this.storage.persist(rd.persist);
        this.carryOut(rd);
        this.replica.advance();
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private carryOut(rd: Ready<RaftKvTypes>): void {
    for (const m of rd.messages) this.transport.send(m.to, m.msg);
    for (const event of rd.events) this.observe(event);
    for (const { client, reply } of rd.replies) {
      const call = this.calls.get(client);
      if (call === undefined) continue; // timed out already, or the replica's own request
      this.calls.delete(client);
      clearTimeout(call.timer);
      call.resolve(reply);
    }
    if (rd.deliver.length > 0) this.publishChanges();
  }

  private observe(event: RaftEvent): void {
    switch (event.type) {
      case 'roleChanged':
        if (event.leader !== this.leader) {
          this.leader = event.leader;
          this.metrics.leaderChange();
          this.options.logger?.info(
            { role: event.role, term: event.term, leader: event.leader },
            'leader changed',
          );
        }
        return;
      case 'electionStarted':
        if (!event.preVote) this.metrics.election();
        return;
      case 'committed':
        this.metrics.commit(event.index - this.committed);
        this.committed = Math.max(this.committed, event.index);
        this.metrics.applyLag(this.committed - this.replica.machine.appliedIndex);
        return;
      case 'configChanged':
        this.options.logger?.info({ config: event.config, index: event.index }, 'configuration');
        return;
      case 'snapshotInstalled':
        this.options.logger?.info({ index: event.index }, 'installed a snapshot from the leader');
        return;
      case 'elected':
      case 'transferAborted':
      case 'dropped':
        return;
      default:
        unreachable(event, 'raft event');
    }
  }

  /** Tells watchers and the address book what was applied since the last batch. */
  private publishChanges(): void {
    const machine = this.replica.machine;
    if (machine.currentRevision === this.notifiedRevision) return;
    const changes = machine.changesSince(this.notifiedRevision);
    this.notifiedRevision = machine.currentRevision;
    if (changes === undefined) {
      // A snapshot replaced the state: the changes in between are not kept anywhere.
      this.members.reload(machine);
      for (const w of this.watchers) w.revision = machine.currentRevision;
      this.options.logger?.warn('state replaced by a snapshot; watchers skip to its revision');
      return;
    }
    this.members.observe(changes);
    for (const w of this.watchers) {
      for (const change of changes) {
        if (change.revision <= w.revision) continue;
        w.revision = change.revision;
        if (!isReservedKey(change.key)) w.onChange(change);
      }
    }
  }

  private schedule(): void {
    if (!this.running || this.pumping !== undefined) return;
    const due = this.replica.deadline();
    if (!Number.isFinite(due) || due >= this.timerDue) return;
    clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDue = Number.POSITIVE_INFINITY;
        if (!this.running) return;
        this.replica.tick(this.clock());
        this.kick();
      },
      Math.max(1, Math.ceil(due - this.clock())),
    );
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.running = false;
    clearTimeout(this.timer);
    this.options.logger?.fatal({ err }, 'storage failed; the node cannot continue safely');
    for (const call of this.calls.values()) {
      clearTimeout(call.timer);
      call.resolve({ type: 'timeout' });
    }
    this.calls.clear();
    this.options.onFatal?.(err);
  }
}

function peerListenOf(address: string | undefined): { host: string; port: number } {
  const match = address === undefined ? null : /^(.*):(\d+)$/.exec(address);
  assert(match !== null, `this node's peer address '${address}' is not host:port`);
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

function changeVisible(config: RaftConfig, change: MembershipChange): boolean {
  switch (change.type) {
    case 'addLearner':
      return config.learners.includes(change.node) || config.voters.includes(change.node);
    case 'promote':
      return config.voters.includes(change.node);
    case 'remove':
      return !config.learners.includes(change.node) && !config.voters.includes(change.node);
    default:
      return unreachable(change, 'membership change');
  }
}

function describe(answer: Answer): string {
  return answer.type === 'rejected' ? answer.reason : answer.type;
}

function withoutReserved(result: KvResult): KvResult {
  if (result.f !== 'list') return result;
  const entries = result.entries.filter((e) => !isReservedKey(e.key));
  return entries.length === result.entries.length ? result : { ...result, entries };
}
