import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { assert, unreachable } from '../kernel/assert.ts';
import type { Ready } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import type { KvChange, KvCommand, KvOp, KvResult } from '../kv/machine.ts';
import { formatProposalId, maxProposalId, type ProposalId } from '../paxos/ballot.ts';
import { MULTI_PAXOS_DEFAULTS, type MultiPaxosConfig } from '../paxos/multi/node.ts';
import type { MultiEvent } from '../paxos/multi/types.ts';
import {
  defaultMultiKvReplicaOptions,
  type MultiKvReplicaOptions,
  type MultiKvRequest,
  MultiPaxosKvReplica,
  type MultiPaxosKvTypes,
  type ReplicaReply,
} from '../replica/multipaxos-kv.ts';
import { TcpTransport, type TlsOptions } from '../runtime/transport/tcp-transport.ts';
import {
  type EngineStatus,
  type KvEngine,
  type MemberAddress,
  NotLeaderError,
  OverloadedError,
  type ReadConsistency,
  UnavailableError,
  UnsupportedError,
  type WatchHandle,
} from './engine.ts';
import type { EngineMetrics } from './metrics.ts';
import { MultiPaxosStorage } from './multipaxos-storage.ts';
import { parsePeerAddress } from './raft-members.ts';

/**
 * A real Multi-Paxos node: hosts a `MultiPaxosKvReplica` on the runtime (WAL, snapshot
 * store, TCP transport, timers) and serves it as a `KvEngine`, so the HTTP API, client, CLI
 * and end-to-end tests are the Raft node's.
 *
 * The host loop is the kernel's (kernel/core.ts), as in RaftEngine: every input (timer
 * tick, peer message, client call) goes into the replica, then `pump` takes Ready batches
 * one at a time: persist everything (one WAL append, one fdatasync), then send messages,
 * answer clients, notify watchers, and advance. Inputs that arrive during an fsync land in
 * the next batch (group commit).
 *
 * The membership is fixed at start: Multi-Paxos reconfiguration is not implemented, and
 * the membership calls reject with UnsupportedError (HTTP 501).
 */
export interface MultiPaxosEngineOptions {
  readonly id: NodeId;
  readonly dataDir: string;
  /** Every member (this node included), with its addresses. */
  readonly members: readonly MemberAddress[];
  /** Cluster secret for the peer handshake (at least 16 bytes). */
  readonly secret: string | Uint8Array;
  /** Where the peer listener binds; the port of this member's peerAddress by default. */
  readonly peerListen?: { readonly host: string; readonly port: number };
  readonly tls?: TlsOptions;
  readonly paxos?: Partial<Omit<MultiPaxosConfig, 'id' | 'members' | 'unsafeTestingFaults'>>;
  readonly replica?: Partial<MultiKvReplicaOptions>;
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
/** Pause before asking again while no leader is known or a read lost its leader. */
const RETRY_PAUSE_MS = 25;
const MEMBERSHIP_UNSUPPORTED =
  'membership changes are not implemented for Multi-Paxos; the members are fixed at start';
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

const multiMsgTypes = new Set<string>([
  'prepare',
  'promise',
  'nack',
  'accept',
  'accepted',
  'heartbeat',
  'heartbeatAck',
  'catchUp',
  'chosenEntries',
  'snapshot',
]);

type Msg = MultiPaxosKvTypes['msg'];
type Role = 'follower' | 'candidate' | 'leader';

export class MultiPaxosEngine implements KvEngine {
  readonly id: NodeId;
  private readonly calls = new Map<ClientId, Call>();
  private readonly watchers = new Set<Watcher>();
  private readonly clientUrls = new Map<NodeId, string>();
  private readonly clock: () => number;
  private readonly metrics: EngineMetrics;
  private readonly settings: { -readonly [K in keyof typeof defaults]: number };
  private running = false;
  private failure: unknown;
  private pumping: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private nextClient: ClientId = 1;
  private role: Role = 'follower';
  private leader: NodeId | null = null;
  /** The highest ballot this node made durable (promised or accepted under): its "term". */
  private ballot: ProposalId;
  private chosenBelow: number;
  private notifiedRevision = 0;

  private constructor(
    private readonly replica: MultiPaxosKvReplica,
    private readonly storage: MultiPaxosStorage,
    private readonly transport: TcpTransport<Msg>,
    private readonly options: MultiPaxosEngineOptions,
    promised: ProposalId,
  ) {
    this.id = options.id;
    this.clock = options.clock ?? (() => performance.now());
    this.metrics = options.metrics ?? silentMetrics;
    this.settings = { ...defaults };
    for (const name of Object.keys(defaults) as (keyof typeof defaults)[]) {
      const value = options[name] ?? defaults[name];
      assert(Number.isSafeInteger(value) && value >= 1, `${name} must be >= 1, got ${value}`);
      this.settings[name] = value;
    }
    for (const m of options.members) {
      this.clientUrls.set(m.id, m.clientUrl);
      if (m.id === options.id) continue;
      const peer = parsePeerAddress(m.peerAddress);
      assert(
        peer !== undefined,
        `member ${m.id}'s peer address '${m.peerAddress}' is not host:port`,
      );
      transport.addPeer(m.id, peer);
    }
    this.ballot = promised;
    this.chosenBelow = replica.paxos.commitIndex();
  }

  /**
   * Opens the data directory and restores the node (newest snapshot, then the WAL folded
   * over it). Throws WalCorruptionError when a WAL record before the tail is damaged.
   */
  static async open(options: MultiPaxosEngineOptions): Promise<MultiPaxosEngine> {
    const metrics = options.metrics ?? silentMetrics;
    const self = options.members.find((m) => m.id === options.id);
    assert(self !== undefined, `node ${options.id} is not in its own member list`);
    const storage = await MultiPaxosStorage.open({
      dir: options.dataDir,
      id: options.id,
      walMetrics: { fsync: (ms) => metrics.observeFsync(ms / 1000) },
    });
    const config: MultiPaxosConfig = {
      ...MULTI_PAXOS_DEFAULTS,
      ...options.paxos,
      id: options.id,
      members: options.members.map((m) => m.id).sort((a, b) => a - b),
    };
    const durable = storage.durable();
    const replica = MultiPaxosKvReplica.restore(config, Rng.fromSeed(randomInt(2 ** 47)), durable, {
      ...defaultMultiKvReplicaOptions,
      ...options.replica,
    });
    const listen = options.peerListen ?? parsePeerAddress(self.peerAddress);
    assert(listen !== undefined, `this node's peer address '${self.peerAddress}' is not host:port`);
    const transport = new TcpTransport<Msg>({
      id: options.id,
      secret: options.secret,
      listen,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      log: (level, message) => options.logger?.[level]({ component: 'transport' }, message),
    });
    return new MultiPaxosEngine(replica, storage, transport, options, durable.promised);
  }

  /** Starts the peer listener and the timers. */
  async start(): Promise<void> {
    assert(!this.running, 'engine started twice');
    this.transport.onMessage((from, msg) => this.onPeerMessage(from, msg));
    await this.transport.start();
    this.running = true;
    this.notifiedRevision = this.replica.machine.currentRevision;
    // The first tick arms the election timer (a restarted node first sits out a lease).
    this.replica.tick(this.clock());
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

  async read(
    op: Extract<KvOp, { f: 'get' } | { f: 'list' }>,
    consistency: ReadConsistency,
  ): Promise<KvResult> {
    if (consistency === 'stale') return this.replica.machine.read(op);
    const deadline = this.clock() + this.settings.callTimeoutMs;
    for (;;) {
      const answer = await this.call(
        (id) => ({ type: 'kv', id, session: 0, seq: 0, op }),
        deadline,
      );
      if (answer.type === 'result') return answer.result;
      await this.refusal(answer, deadline, 'read');
    }
  }

  watch(fromRevision: number, onChange: (change: KvChange) => void): WatchHandle | 'compacted' {
    const past = this.replica.machine.changesSince(fromRevision);
    if (past === undefined) return 'compacted';
    const watcher: Watcher = { onChange, revision: fromRevision };
    for (const change of past) {
      onChange(change);
      watcher.revision = change.revision;
    }
    this.watchers.add(watcher);
    return { cancel: () => this.watchers.delete(watcher) };
  }

  status(): EngineStatus {
    const leader = this.leader ?? 0;
    return {
      id: this.id,
      protocol: 'multipaxos',
      role: this.role,
      term: this.ballot.round,
      leader,
      leaderClientUrl: leader === 0 ? undefined : this.clientUrls.get(leader),
      // Instances play the part of log indexes: the last chosen one, the last applied one.
      commitIndex: this.replica.paxos.commitIndex() - 1,
      appliedIndex: this.replica.lastApplied,
      revision: this.replica.machine.currentRevision,
      members: this.options.members.map((m) => ({ ...m, role: 'voter' as const })),
      progress: undefined,
    };
  }

  addLearner(_member: MemberAddress): Promise<void> {
    return Promise.reject(new UnsupportedError(MEMBERSHIP_UNSUPPORTED));
  }

  promote(_id: NodeId): Promise<void> {
    return Promise.reject(new UnsupportedError(MEMBERSHIP_UNSUPPORTED));
  }

  remove(_id: NodeId): Promise<void> {
    return Promise.reject(new UnsupportedError(MEMBERSHIP_UNSUPPORTED));
  }

  // -------------------------------------------------------------------------------------
  // Calls into the replica

  /**
   * Handles an answer that is not a result: throws for final ones, or waits a moment and
   * returns for passing ones (no leader yet, a read whose leader changed under it) while
   * the deadline allows.
   */
  private async refusal(answer: Answer, deadline: number, kind: 'read' | 'write'): Promise<void> {
    switch (answer.type) {
      case 'notLeader': {
        // The server forwards to a named leader. With none known an election is under way,
        // and nothing was proposed, so waiting for its outcome (as etcd does) is safe and
        // spares the client a round of "no leader, retry".
        const leader = answer.leader === this.id ? 0 : answer.leader;
        if (leader !== 0 || this.clock() + RETRY_PAUSE_MS >= deadline) {
          throw new NotLeaderError(leader, this.clientUrls.get(leader));
        }
        break;
      }
      case 'timeout':
        throw new UnavailableError(`no answer within ${this.settings.callTimeoutMs} ms`);
      case 'rejected':
        throw new OverloadedError(answer.reason);
      case 'unknown':
        if (kind === 'read') break; // a read changes nothing: ask again
        throw new UnavailableError('the outcome is unknown');
      case 'result':
      case 'done':
        throw new Error(`unexpected answer '${answer.type}' to a ${kind}`);
      default:
        unreachable(answer, 'answer');
    }
    if (this.clock() + RETRY_PAUSE_MS >= deadline) {
      throw new UnavailableError(`still refused (${answer.type}) until the deadline`);
    }
    await new Promise((wake) => setTimeout(wake, RETRY_PAUSE_MS));
  }

  /** Hands one request to the replica and waits for its answer, or for `deadline`. */
  private call(build: (id: number) => MultiKvRequest, deadline: number): Promise<Answer> {
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

  private onPeerMessage(from: NodeId, msg: Msg): void {
    if (!this.running) return;
    const type = (msg as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !multiMsgTypes.has(type)) {
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

  private carryOut(rd: Ready<MultiPaxosKvTypes>): void {
    for (const p of rd.persist) {
      if (p.type === 'promise' || p.type === 'accept') {
        this.ballot = maxProposalId(this.ballot, p.ballot);
      }
    }
    for (const m of rd.messages) this.transport.send(m.to, m.msg);
    for (const event of rd.events) this.observe(event);
    for (const { client, reply } of rd.replies) {
      const call = this.calls.get(client);
      if (call === undefined) continue; // timed out already
      this.calls.delete(client);
      clearTimeout(call.timer);
      call.resolve(reply);
    }
    for (const d of rd.deliver) {
      if (d.type === 'snapshot') {
        this.options.logger?.info({ upTo: d.upTo }, 'installed a snapshot from a peer');
      }
    }
    if (rd.deliver.length > 0) {
      const chosenBelow = this.replica.paxos.commitIndex();
      this.metrics.commit(chosenBelow - this.chosenBelow);
      this.chosenBelow = chosenBelow;
      this.metrics.applyLag(chosenBelow - 1 - this.replica.lastApplied);
      this.publishChanges();
    }
  }

  private observe(event: MultiEvent): void {
    switch (event.type) {
      case 'campaign':
        this.role = 'candidate';
        this.metrics.election();
        this.setLeader(null, { ballot: formatProposalId(event.ballot) });
        return;
      case 'leader':
        this.role = 'leader';
        this.setLeader(this.id, {
          ballot: formatProposalId(event.ballot),
          recovered: event.recovered,
        });
        return;
      case 'follower':
        this.role = 'follower';
        this.setLeader(event.leader, {});
        return;
      case 'catchUpNeeded':
        this.options.logger?.info({ from: event.fromInstance }, 'catching up from a peer');
        return;
      case 'dropped':
        this.options.logger?.warn({ from: event.from }, 'dropped a message from an unknown peer');
        return;
      default:
        unreachable(event, 'multi-paxos event');
    }
  }

  private setLeader(leader: NodeId | null, detail: Record<string, unknown>): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.metrics.leaderChange();
    this.options.logger?.info(
      { role: this.role, leader: leader ?? 0, ...detail },
      'leader changed',
    );
  }

  /** Tells watchers what was applied since the last batch. */
  private publishChanges(): void {
    const machine = this.replica.machine;
    if (machine.currentRevision === this.notifiedRevision) return;
    const changes = machine.changesSince(this.notifiedRevision);
    this.notifiedRevision = machine.currentRevision;
    if (changes === undefined) {
      // A peer's snapshot replaced the state: the changes in between are not kept anywhere.
      for (const w of this.watchers) w.revision = machine.currentRevision;
      this.options.logger?.warn('state replaced by a snapshot; watchers skip to its revision');
      return;
    }
    for (const w of this.watchers) {
      for (const change of changes) {
        if (change.revision <= w.revision) continue;
        w.revision = change.revision;
        w.onChange(change);
      }
    }
  }

  private schedule(): void {
    if (!this.running || this.pumping !== undefined) return;
    const due = this.replica.deadline();
    if (Number.isNaN(due) || due === Number.POSITIVE_INFINITY || due >= this.timerDue) return;
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
