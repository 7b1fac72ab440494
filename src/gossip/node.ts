import { assert, unreachable } from '../kernel/assert.ts';
import type { Core, Ready } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';
import { RumourQueue } from './broadcast.ts';
import {
  awarenessScaledMs,
  digestMismatchMs,
  eventSendsMax,
  type GossipConfig,
  hashMismatchMs,
  pauseThresholdMs,
  pushPullScaleMs,
  retransmitLimit,
} from './config.ts';
import { type GossipMode, isGone, type Member, MembershipCore } from './membership.ts';
import type {
  Digest,
  GossipDurable,
  GossipMsg,
  GossipRequest,
  GossipTypes,
  PushPullReason,
  Rumour,
  UserEvent,
} from './types.ts';
import { msgProblem } from './validate.ts';
import { digestBytes, rumourBytes, utf8Bytes } from './wire.ts';

export type { GossipMode, GossipStats } from './membership.ts';

interface Probe {
  readonly target: NodeId;
  readonly incarnation: number;
  readonly seq: number;
  readonly timeoutAt: number;
  readonly endAt: number;
  acked: boolean;
  indirect: boolean;
  nacks: number;
  expectedNacks: number;
}

interface Relay {
  readonly requester: NodeId;
  readonly seq: number;
  readonly nackAt: number;
}

/** Fraction of the probe timeout after which a relay gives up and nacks (Lifeguard 4.1). */
const NACK_FRACTION = 0.8;
/** Space for a gossip message's code, rumour count and digest flag. */
const GOSSIP_HEADER_BYTES = 3;
/** Code, seq, target and rumour count of a ping; code, seq and count of an ack. */
const PING_HEADER_BYTES = 10;
const ACK_HEADER_BYTES = 6;
/** Early gossip rounds for new events: at most this many per gossip interval. */
const EARLY_ROUNDS_PER_INTERVAL = 4;
/** Peers of a round that has only the digest to send. */
const QUIET_GOSSIP_NODES = 1;
/** How often dead and left members are checked for reaping (a scan of the table). */
const REAP_CHECK_MS = 1_000;
/** Slice evidence kept at once; the oldest goes first. */
const BEHIND_MAX = 256;

/**
 * One gossip member: SWIM failure detection with Lifeguard's local health, nacks and
 * confirmation-shortened suspicion, rumour dissemination piggybacked on probes and gossip
 * rounds, a digest per round that repairs what rumours missed, push-pull state exchange,
 * and user events delivered in order per origin. Pure: the host carries out `Ready`.
 *
 * Durability: the incarnation and the last event number are persisted before any message
 * that announces them leaves (Ready rule 1), and a restart resumes above both, so a node
 * is never stuck dead behind its own old incarnation.
 */
export class GossipNode extends MembershipCore implements Core<GossipTypes> {
  private readonly eventQueue: RumourQueue;
  private readonly relays = new Map<number, Relay>();
  protected mode: GossipMode;
  private seeds: readonly NodeId[];
  private seedOrder: NodeId[] = [];
  private seedIndex = 0;
  private probeSeq = 0;
  private probe: Probe | undefined = undefined;
  private probeList: NodeId[] = [];
  private probeIndex = 0;
  private nextProbeAt: number;
  private nextGossipAt: number;
  private nextPushPullAt: number;
  private nextReconnectAt: number;
  private pushPull:
    | { readonly with: NodeId; readonly timeoutAt: number; readonly reason: PushPullReason }
    | undefined = undefined;
  /** Per peer, since when its digests have disagreed with ours (bounded by the membership). */
  private readonly mismatchSince = new Map<NodeId, number>();
  /** What digest slices showed peers know better, and since when (bounded by BEHIND_MAX). */
  private readonly behind = new Map<string, { readonly target: number; readonly since: number }>();
  private digestCursor = 0;
  private headCursor = 0;
  private leaveUntil = Number.POSITIVE_INFINITY;
  /** The deadline we gave at the end of the last input: a much later input means we were paused. */
  private expectedAt = Number.POSITIVE_INFINITY;
  private nextReapAt: number;
  private lastEarlyRoundAt = Number.NEGATIVE_INFINITY;

  constructor(
    config: GossipConfig,
    private readonly rng: Rng,
    durable: GossipDurable | undefined,
    now: number,
  ) {
    super(config, durable, now);
    this.eventQueue = new RumourQueue(config.eventsRetainedMax);
    this.seeds = config.seeds.filter((s) => s !== this.id);
    this.mode = this.seeds.length === 0 ? 'member' : 'joining';
    this.nextProbeAt = now + this.rng.int(config.probeIntervalMs);
    this.nextGossipAt = now + this.rng.int(config.gossipIntervalMs);
    this.nextPushPullAt = now + pushPullScaleMs(config.pushPullIntervalMs, 1);
    this.nextReconnectAt = now + this.rng.int(config.reconnectIntervalMs);
    this.nextReapAt = now + REAP_CHECK_MS;
    if (this.mode === 'member') this.queueSelfAlive();
    this.expectedAt = this.deadline();
  }

  // --- Core contract ------------------------------------------------------------------------

  tick(now: number): void {
    this.enter(now);
    if (this.mode === 'idle') {
      this.leave();
      return;
    }
    if (this.mode === 'leaving' && now >= this.leaveUntil) {
      this.mode = 'idle';
      this.probe = undefined;
      this.suspicions.clear();
      this.relays.clear();
      this.pushPull = undefined;
      this.leave();
      return;
    }
    if (this.mode === 'joining' && this.pushPull === undefined) this.joinAttempt();
    if (this.mode === 'member') this.probeTimers(now);
    this.expireSuspicions(now);
    this.expireRelays(now);
    if (this.pushPull !== undefined && now >= this.pushPull.timeoutAt) this.pushPull = undefined;
    if (now >= this.nextGossipAt) {
      this.nextGossipAt = now + this.config.gossipIntervalMs;
      this.gossipRound();
    }
    if (this.mode === 'member') this.antiEntropy(now);
    if (now >= this.nextReapAt) {
      this.nextReapAt = now + REAP_CHECK_MS;
      this.reap(now);
      for (const id of this.mismatchSince.keys())
        if (!this.members.has(id)) this.mismatchSince.delete(id);
    }
    this.log.evict(now);
    this.leave();
  }

  receive(now: number, from: NodeId, msg: GossipMsg): void {
    this.enter(now);
    const problem = msgProblem(msg, this.config);
    if (problem !== undefined) this.drop(problem);
    else if (this.mode !== 'idle') {
      this.dispatch(from, msg);
      this.tellSuspect(from);
    }
    this.leave();
  }

  request(now: number, client: ClientId, req: GossipRequest): void {
    this.enter(now);
    switch (req.type) {
      case 'join':
        this.handleJoinRequest(client, req.seeds);
        break;
      case 'leave':
        this.handleLeaveRequest();
        this.out.reply(client, { type: 'ok' });
        break;
      case 'publish':
        this.publish(client, req.name, req.payload);
        break;
      case 'set-tags':
        this.setTags(client, req.tags);
        break;
      default:
        unreachable(req, 'gossip request');
    }
    this.leave();
  }

  deadline(): number {
    if (this.mode === 'idle') return Number.POSITIVE_INFINITY;
    let d = Math.min(this.nextGossipAt, this.leaveUntil);
    if (this.mode === 'member') {
      d = Math.min(d, this.nextProbeAt, this.nextPushPullAt, this.nextReconnectAt);
      const p = this.probe;
      if (p !== undefined) d = Math.min(d, p.endAt, p.acked || p.indirect ? d : p.timeoutAt);
    }
    if (this.pushPull !== undefined) d = Math.min(d, this.pushPull.timeoutAt);
    for (const s of this.suspicions.values()) d = Math.min(d, s.deadline());
    for (const r of this.relays.values()) d = Math.min(d, r.nackAt);
    return d;
  }

  ready(): Ready<GossipTypes> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  // --- input plumbing -------------------------------------------------------------------

  private enter(now: number): void {
    assert(now >= this.now, `time went back: ${now} < ${this.now}`);
    this.now = now;
    const late = now - this.expectedAt;
    if (late > pauseThresholdMs(this.config.probeIntervalMs)) this.onPause(late);
    // Verdicts fall due on any input, not only on ticks: a verdict waits for no timer.
    if (this.mode !== 'idle' && this.suspicions.size > 0) this.expireSuspicions(now);
  }

  private leave(): void {
    this.invariants();
    this.expectedAt = Math.max(this.now, this.deadline());
  }

  /**
   * An input far past our own deadline: we were paused (GC, SIGSTOP, an overloaded host).
   * Missed acks are our fault, not the peers': drop the probe without a verdict, give
   * suspicions back the time we could not hear refutations, and raise our health score.
   */
  private onPause(ms: number): void {
    this.stats.pauses++;
    this.out.emit({ type: 'paused', ms });
    this.bumpHealth(1);
    this.probe = undefined;
    this.relays.clear();
    this.mismatchSince.clear();
    for (const s of this.suspicions.values()) s.credit(ms);
    if (this.pushPull !== undefined)
      this.pushPull = { ...this.pushPull, timeoutAt: this.now + this.config.pushPullTimeoutMs };
    this.nextProbeAt = Math.max(this.nextProbeAt, this.now);
    this.nextGossipAt = Math.max(this.nextGossipAt, this.now);
    this.nextPushPullAt = Math.max(this.nextPushPullAt, this.now);
    this.nextReconnectAt = Math.max(this.nextReconnectAt, this.now);
  }

  private dispatch(from: NodeId, msg: GossipMsg): void {
    switch (msg.type) {
      case 'ping':
        this.handlePing(from, msg.seq, msg.target, msg.rumours);
        return;
      case 'ack':
        this.handleAck(from, msg.seq, msg.rumours);
        return;
      case 'nack':
        this.handleNack(msg.seq);
        return;
      case 'ping-req':
        this.handlePingReq(from, msg.seq, msg.target, msg.rumours);
        return;
      case 'gossip':
        this.applyRumours(from, msg.rumours);
        if (msg.digest !== undefined) this.handleDigest(from, msg.digest);
        return;
      case 'seen':
        for (const e of msg.events)
          this.eventQueue.useless(e.origin, e.seq, this.config.eventUselessSendsMax);
        return;
      case 'push-pull':
        this.handlePushPull(from, msg);
        return;
      case 'events':
        this.receiveEvents(msg.events);
        return;
      default:
        unreachable(msg, 'gossip message');
    }
  }

  /**
   * A member we suspect just spoke to us: tell it, so it refutes at once instead of when
   * our probe round comes back to it or our suspicion expires (up to 41 s at n = 50).
   */
  private tellSuspect(from: NodeId): void {
    const m = this.members.get(from);
    if (m === undefined || m.status !== 'suspect' || !this.config.lifeguard) return;
    // At most once per probe interval per suspicion: two members suspecting each other
    // would otherwise answer each other's answers for ever.
    const s = this.suspicions.get(from);
    if (s === undefined || this.now - s.toldAt < this.config.probeIntervalMs) return;
    s.toldAt = this.now;
    const rumour = {
      kind: 'suspect' as const,
      id: from,
      incarnation: m.incarnation,
      from: this.id,
    };
    this.out.send(from, { type: 'gossip', rumours: [rumour] });
  }

  private invariants(): void {
    assert(
      this.health >= 0 && this.health < this.config.awarenessMax,
      `health ${this.health} out of range`,
    );
    assert(this.members.size <= this.config.membersMax, 'membership above membersMax');
    assert(this.relays.size <= this.config.relaysMax, 'relays above relaysMax');
    const self = this.members.get(this.id);
    assert(self !== undefined && self.incarnation === this.incarnation, 'own record lost or stale');
    assert(
      this.aliveCount >= 1 && this.aliveCount <= this.members.size,
      'alive count out of range',
    );
  }

  // --- probing (SWIM 3.1, Lifeguard 4.1) -------------------------------------------------------

  private probeTimers(now: number): void {
    const p = this.probe;
    if (p !== undefined && !p.acked && !p.indirect && now >= p.timeoutAt) this.probeIndirect(p);
    if (p !== undefined && now >= p.endAt) this.finishProbe(p);
    if (this.probe === undefined && now >= this.nextProbeAt) this.startProbe(now);
  }

  private nextProbeTarget(): Member | undefined {
    for (let tries = 0; tries < 2; tries++) {
      while (this.probeIndex < this.probeList.length) {
        const m = this.members.get(this.probeList[this.probeIndex++]!);
        if (m !== undefined && m.id !== this.id && !isGone(m.status)) return m;
      }
      this.probeList = this.rng.shuffle([...this.order]);
      this.probeIndex = 0;
    }
    return undefined;
  }

  private startProbe(now: number): void {
    const interval = awarenessScaledMs(this.config.probeIntervalMs, this.health);
    this.nextProbeAt = now + interval;
    const target = this.nextProbeTarget();
    if (target === undefined) return;
    const seq = this.nextSeq();
    const lead: Rumour[] = [];
    if (target.status === 'suspect' && this.config.lifeguard) {
      // A suspect we probe hears the suspicion with the ping, and can refute in its ack.
      lead.push({ kind: 'suspect', id: target.id, incarnation: target.incarnation, from: this.id });
    }
    const rumours = this.piggyback(PING_HEADER_BYTES, lead);
    this.out.send(target.id, { type: 'ping', seq, target: target.id, rumours });
    this.stats.probes++;
    this.probe = {
      target: target.id,
      incarnation: target.incarnation,
      seq,
      timeoutAt: now + awarenessScaledMs(this.config.probeTimeoutMs, this.health),
      endAt: now + interval,
      acked: false,
      indirect: false,
      nacks: 0,
      expectedNacks: 0,
    };
  }

  private probeIndirect(p: Probe): void {
    p.indirect = true;
    const helpers = this.randomPeers(
      this.config.indirectChecks,
      (m) => m.status === 'alive' && m.id !== p.target,
    );
    for (const h of helpers)
      this.out.send(h, { type: 'ping-req', seq: p.seq, target: p.target, rumours: [] });
    p.expectedNacks = this.config.lifeguard ? helpers.length : 0;
  }

  private finishProbe(p: Probe): void {
    this.probe = undefined;
    if (p.acked) {
      this.bumpHealth(-1);
      return;
    }
    this.stats.failedProbes++;
    // Lifeguard 4.1: missing nacks mean our own network or process is the slow one.
    this.bumpHealth(p.expectedNacks > 0 ? p.expectedNacks - p.nacks : 1);
    const m = this.members.get(p.target);
    if (m === undefined || isGone(m.status) || m.incarnation !== p.incarnation) return;
    this.applySuspect(this.id, m.id, m.incarnation);
  }

  private nextSeq(): number {
    this.probeSeq = (this.probeSeq + 1) >>> 0;
    return this.probeSeq;
  }

  private handlePing(from: NodeId, seq: number, target: NodeId, rumours: readonly Rumour[]): void {
    this.applyRumours(from, rumours);
    if (target !== this.id) {
      this.drop('misdirected');
      return;
    }
    this.out.send(from, { type: 'ack', seq, rumours: this.piggyback(ACK_HEADER_BYTES, []) });
  }

  private handleAck(from: NodeId, seq: number, rumours: readonly Rumour[]): void {
    this.applyRumours(from, rumours);
    const p = this.probe;
    if (p !== undefined && p.seq === seq) {
      p.acked = true;
      return;
    }
    const relay = this.relays.get(seq);
    if (relay !== undefined) {
      this.relays.delete(seq);
      this.out.send(relay.requester, { type: 'ack', seq: relay.seq, rumours: [] });
    }
  }

  private handleNack(seq: number): void {
    const p = this.probe;
    if (p !== undefined && p.seq === seq) p.nacks++;
  }

  private handlePingReq(
    from: NodeId,
    seq: number,
    target: NodeId,
    rumours: readonly Rumour[],
  ): void {
    this.applyRumours(from, rumours);
    if (this.relays.size >= this.config.relaysMax || target === this.id) return;
    const ours = this.nextSeq();
    const nackAt = this.now + this.config.probeTimeoutMs * NACK_FRACTION;
    this.relays.set(ours, { requester: from, seq, nackAt });
    this.out.send(target, { type: 'ping', seq: ours, target, rumours: [] });
  }

  private expireRelays(now: number): void {
    for (const [key, r] of this.relays) {
      if (now < r.nackAt) continue;
      this.relays.delete(key);
      if (this.config.lifeguard) this.out.send(r.requester, { type: 'nack', seq: r.seq });
    }
  }

  private expireSuspicions(now: number): void {
    for (const s of [...this.suspicions.values()]) {
      if (now < s.deadline()) continue;
      this.suspicions.delete(s.about);
      const m = this.members.get(s.about);
      if (m !== undefined && m.status === 'suspect' && m.incarnation === s.incarnation) {
        this.applyDead(this.id, m.id, m.incarnation);
      }
    }
  }

  // --- gossip rounds and the digest --------------------------------------------------------------

  private gossipable(m: Member): boolean {
    if (m.id === this.id) return false;
    if (!isGone(m.status)) return true;
    return m.status === 'dead' && this.now - m.changedAt < this.config.gossipToTheDeadMs;
  }

  private gossipRound(): void {
    // With no rumour queued a round carries only the digest, and one peer is enough for it:
    // a digest to gossipNodes peers every round was most of an idle agent's datagrams and
    // CPU (memberlist sends nothing at all then). A mismatch still surfaces within a few
    // rounds, and any rumour brings the full fan-out back.
    const quiet = this.membershipQueue.size === 0 && this.eventQueue.size === 0;
    const fanOut = quiet
      ? Math.min(QUIET_GOSSIP_NODES, this.config.gossipNodes)
      : this.config.gossipNodes;
    const targets = this.randomPeers(fanOut, (m) => this.gossipable(m));
    if (targets.length === 0) return;
    const digest = this.buildDigest();
    const fixed = GOSSIP_HEADER_BYTES + digestBytes(digest);
    for (const to of targets) {
      const rumours = this.piggyback(fixed, []);
      this.out.send(to, { type: 'gossip', rumours, digest });
    }
  }

  private buildDigest(): Digest {
    const c = this.config;
    const n = this.order.length;
    const count = Math.min(c.digestEntriesMax, n);
    const entries = [];
    for (let i = 0; i < count; i++) {
      const m = this.members.get(this.order[(this.digestCursor + i) % n]!)!;
      entries.push({ id: m.id, incarnation: m.incarnation, gone: isGone(m.status) });
    }
    this.digestCursor = (this.digestCursor + count) % Math.max(1, n);
    const heads = this.log.headSlice(this.headCursor, c.digestHeadsMax);
    this.headCursor += heads.length;
    return { hash: this.hash, members: n, entries, heads };
  }

  /**
   * A peer's digest. Where its slice shows we know more, we send that back at once. Where it
   * shows the peer knows more, and still does after a rumour's lifetime, we push-pull with
   * it now rather than at the next periodic exchange; so we do when its hash of the whole
   * membership has differed from ours for `hashMismatchMs`, which covers what no slice shows.
   */
  private handleDigest(from: NodeId, d: Digest): void {
    if (this.mode !== 'member') return;
    const c = this.config;
    const lasting = digestMismatchMs(
      c.digestMismatchMult,
      retransmitLimit(c.retransmitMult, this.aliveCount),
      c.gossipNodes,
      c.gossipIntervalMs,
    );
    let due = this.headEvidence(d, lasting);
    if (d.hash === this.hash) {
      this.mismatchSince.delete(from);
    } else {
      if (this.entryEvidence(from, d, lasting)) due = true;
      const since = this.mismatchSince.get(from);
      if (since === undefined) {
        if (this.members.has(from)) this.mismatchSince.set(from, this.now);
      } else if (this.now - since >= hashMismatchMs(lasting)) due = true;
    }
    if (due && this.pushPull === undefined) {
      this.mismatchSince.delete(from);
      this.startPushPull(from, 'mismatch');
    }
  }

  /** The peer knows `key` up to `target` and we do not: true once that has lasted. */
  private behindOn(key: string, target: number, lasting: number): boolean {
    const b = this.behind.get(key);
    if (b !== undefined && b.target === target) return this.now - b.since >= lasting;
    if (b === undefined && this.behind.size >= BEHIND_MAX) {
      const oldest = this.behind.keys().next();
      if (oldest.done !== true) this.behind.delete(oldest.value);
    }
    this.behind.set(key, { target, since: this.now });
    return false;
  }

  private headEvidence(d: Digest, lasting: number): boolean {
    let due = false;
    for (const h of d.heads) {
      this.log.noteHead(h.origin, h.seq, this.now);
      if (h.seq > this.log.head(h.origin) && this.behindOn(`e${h.origin}`, h.seq, lasting)) {
        due = true;
      }
    }
    return due;
  }

  private entryEvidence(from: NodeId, d: Digest, lasting: number): boolean {
    let due = false;
    const repairs: Rumour[] = [];
    let left = this.config.packetBytesMax - GOSSIP_HEADER_BYTES;
    for (const e of d.entries) {
      const m = this.members.get(e.id);
      if (e.id === this.id && e.gone) this.refute(e.incarnation);
      const theirsNewer =
        m === undefined
          ? !e.gone
          : e.incarnation > m.incarnation ||
            (e.incarnation === m.incarnation && e.gone && !isGone(m.status));
      if (theirsNewer) {
        if (this.behindOn(`m${e.id}`, e.incarnation * 2 + (e.gone ? 1 : 0), lasting)) due = true;
        continue;
      }
      const oursNewer =
        m !== undefined &&
        (m.incarnation > e.incarnation ||
          (m.incarnation === e.incarnation && isGone(m.status) && !e.gone));
      if (!oursNewer) continue;
      const r = this.rumourFor(m);
      const size = rumourBytes(r);
      if (size > left || repairs.length >= 255) continue;
      repairs.push(r);
      left -= size;
    }
    if (repairs.length > 0) this.out.send(from, { type: 'gossip', rumours: repairs });
    return due;
  }

  /** Membership rumours first, then events, within the packet budget after `used` bytes. */
  private piggyback(used: number, lead: Rumour[]): Rumour[] {
    const c = this.config;
    let left = c.packetBytesMax - used;
    for (const r of lead) left -= rumourBytes(r);
    const limit =
      c.unsafeTestingFaults?.unboundedRetransmits === true
        ? Number.POSITIVE_INFINITY
        : retransmitLimit(c.retransmitMult, this.aliveCount);
    left = this.membershipQueue.take(left, limit, lead);
    this.eventQueue.take(left, eventSendsMax(c.retransmitMult, this.aliveCount), lead);
    return lead;
  }

  private randomPeer(ok: (m: Member) => boolean): NodeId | undefined {
    return this.randomPeers(1, ok)[0];
  }

  /** Up to `k` distinct members passing `ok`, by rejection sampling (O(k) when most pass). */
  private randomPeers(k: number, ok: (m: Member) => boolean): NodeId[] {
    const out: NodeId[] = [];
    const n = this.order.length;
    if (k === 0 || n <= 1) return out;
    for (let tries = 0; tries < 4 * k + 8 && out.length < k; tries++) {
      const id = this.order[this.rng.int(n)]!;
      const m = this.members.get(id)!;
      if (id !== this.id && ok(m) && !out.includes(id)) out.push(id);
    }
    if (out.length < k) {
      // Few eligible among many: scan once (rare: most of the cluster dead).
      const rest = this.order.filter(
        (id) => id !== this.id && !out.includes(id) && ok(this.members.get(id)!),
      );
      this.rng.shuffle(rest);
      for (const id of rest) if (out.length < k) out.push(id);
    }
    return out;
  }

  // --- push-pull state exchange -----------------------------------------------------------------

  private startPushPull(peer: NodeId, reason: PushPullReason): void {
    this.pushPull = { with: peer, timeoutAt: this.now + this.config.pushPullTimeoutMs, reason };
    this.stats.pushPulls++;
    this.out.emit({ type: 'push-pull', with: peer, reason });
    this.out.send(peer, {
      type: 'push-pull',
      reply: false,
      join: reason === 'join',
      members: this.memberRecords(),
      heads: this.log.retainedHeads(),
      events: [],
    });
  }

  /** Periodic push-pull, reconnects to the dead, and rejoining through seeds when alone. */
  private antiEntropy(now: number): void {
    const c = this.config;
    if (now >= this.nextPushPullAt) {
      this.nextPushPullAt = now + pushPullScaleMs(c.pushPullIntervalMs, this.aliveCount);
      const peer = this.randomPeer((m) => m.status === 'alive');
      if (peer !== undefined && this.pushPull === undefined) this.startPushPull(peer, 'periodic');
    }
    if (now >= this.nextReconnectAt) {
      this.nextReconnectAt = now + c.reconnectIntervalMs;
      const peer = this.reconnectTarget(now);
      if (peer !== undefined && this.pushPull === undefined) this.startPushPull(peer, 'reconnect');
    }
    // Alone (everyone else dead, left or unknown): go back through the seeds.
    if (this.aliveCount === 1 && this.pushPull === undefined && this.seeds.length > 0) {
      this.joinAttempt();
    }
  }

  /**
   * A member we hold dead, or a seed we do not hold alive (unknown, or left and perhaps
   * back): after partitions and restarts two groups can each hold the other dead or not
   * know it at all, and only a reconnect makes them talk again.
   */
  private reconnectTarget(now: number): NodeId | undefined {
    const timeout = this.config.reconnectTimeoutMs;
    const candidates: NodeId[] = [];
    for (const m of this.members.values()) {
      if (m.status === 'dead' && now - m.changedAt < timeout) candidates.push(m.id);
    }
    for (const s of this.seeds) {
      const m = this.members.get(s);
      if (m === undefined || m.status === 'left') candidates.push(s);
    }
    return candidates.length === 0 ? undefined : candidates[this.rng.int(candidates.length)];
  }

  /** Seeds in a shuffled round: every seed is tried once before any is tried again. */
  private joinAttempt(): void {
    if (this.seedIndex >= this.seedOrder.length) {
      this.seedOrder = this.rng.shuffle([...this.seeds]);
      this.seedIndex = 0;
    }
    const seed = this.seedOrder[this.seedIndex++];
    if (seed !== undefined) this.startPushPull(seed, 'join');
  }

  private handlePushPull(from: NodeId, msg: Extract<GossipMsg, { type: 'push-pull' }>): void {
    if (msg.reply && this.pushPull?.with !== from) return;
    const joined = msg.reply && this.mode === 'joining';
    // A member joining more seeds (an agent started alone, then told to join) announces
    // itself as a first join does: its new cluster has never heard of it.
    const announce = joined || (msg.reply && this.pushPull?.reason === 'join');
    if (msg.reply) this.pushPull = undefined;
    const hashBefore = this.hash;
    this.mergeMembers(from, msg.members);
    if (this.mode === 'joining') {
      this.mode = 'member';
      this.queueSelfAlive();
    }
    if (announce) this.announceJoin(from);
    // News from a state exchange (a node joining through us, or our own join) is gossiped
    // now, not at the next round: the rest of the cluster waits on it. One extra round
    // per exchange, and exchanges are rare.
    if (this.hash !== hashBefore || msg.join)
      this.nextGossipAt = Math.min(this.nextGossipAt, this.now);
    if (joined) for (const h of msg.heads) this.log.follow(h.origin, h.seq);
    this.receiveEvents(msg.events);
    for (const h of msg.heads) {
      this.log.gapBefore(h);
      this.log.noteHead(h.origin, h.seq, this.now);
    }
    if (!msg.reply) {
      this.out.send(from, {
        type: 'push-pull',
        reply: true,
        join: false,
        members: this.memberRecords(),
        heads: this.log.retainedHeads(),
        events: this.log.missing(msg.heads, msg.join, this.config.pushPullEventsMax),
      });
      return;
    }
    const theirs = this.log.missing(msg.heads, false, this.config.pushPullEventsMax);
    if (theirs.length > 0) this.out.send(from, { type: 'events', events: theirs });
  }

  /**
   * Just joined with the seed's state: tell up to `joinAnnounceNodes` of its alive members
   * of us directly. The seed's own rumour of us reaches them too, but in an epidemic's
   * rounds; a burst of nodes joining one seed left the early ones to learn of every later
   * one that way (at n = 20, most of a join's second). Each gets only our own alive, sent
   * outside the retransmit queue, whose limit these sends must not use up.
   */
  private announceJoin(seed: NodeId): void {
    const k = this.config.joinAnnounceNodes;
    if (k === 0) return;
    const targets = this.randomPeers(k, (m) => m.id !== seed && m.status === 'alive');
    const self = this.rumourFor(this.members.get(this.id)!);
    for (const to of targets) this.out.send(to, { type: 'gossip', rumours: [self] });
  }

  // --- user events ----------------------------------------------------------------------

  protected receiveEvent(e: UserEvent): 'new' | 'known' | 'full' {
    const intake = this.log.receive(e, this.now);
    if (intake === 'new') {
      this.eventQueue.put({ kind: 'event', event: e });
      this.gossipSoon();
    }
    return intake;
  }

  /**
   * A new event, or a death, is gossiped now rather than at the next round: each hop of its
   * epidemic would otherwise wait half a gossip interval on average (a kill -9 at n = 50 is
   * three or four hops from the first verdict to the last member). At most one early round per
   * quarter interval, so a burst of events still goes out a few rounds, coalesced.
   */
  protected spreadSoon(): void {
    this.gossipSoon();
  }

  private gossipSoon(): void {
    const earliest =
      this.lastEarlyRoundAt + this.config.gossipIntervalMs / EARLY_ROUNDS_PER_INTERVAL;
    if (this.now < earliest || this.nextGossipAt <= this.now) return;
    this.lastEarlyRoundAt = this.now;
    this.nextGossipAt = this.now;
  }

  private receiveEvents(events: readonly UserEvent[]): void {
    for (const e of events) this.receiveEvent(e);
  }

  private publish(client: ClientId, name: string, payload: string): void {
    const c = this.config;
    if (this.mode !== 'member') {
      this.out.reply(client, { type: 'refused', reason: { code: 'not-member' } });
      return;
    }
    const size = utf8Bytes(name) + utf8Bytes(payload);
    if (size > c.eventBytesMax || utf8Bytes(name) > 255) {
      const reason = {
        code: 'too-large',
        limit: 'eventBytesMax',
        max: c.eventBytesMax,
        got: size,
      } as const;
      this.out.reply(client, { type: 'refused', reason });
      return;
    }
    this.eventSeq++;
    this.persistHardState();
    const event = { origin: this.id, seq: this.eventSeq, name, payload };
    this.receiveEvent(event);
    this.out.reply(client, { type: 'published', origin: this.id, seq: this.eventSeq });
  }

  private setTags(client: ClientId, tags: string): void {
    const max = this.config.tagsBytesMax;
    const got = utf8Bytes(tags);
    if (got > max) {
      this.out.reply(client, {
        type: 'refused',
        reason: { code: 'too-large', limit: 'tagsBytesMax', max, got },
      });
      return;
    }
    this.incarnation++;
    this.persistHardState();
    const self = this.members.get(this.id)!;
    self.tags = tags;
    this.setMember(self, this.incarnation, self.status);
    if (this.mode === 'member') this.queueSelfAlive();
    this.out.reply(client, { type: 'ok' });
  }

  private handleJoinRequest(client: ClientId, seeds: readonly NodeId[]): void {
    if (this.mode === 'idle' || this.mode === 'leaving') {
      this.incarnation++;
      this.persistHardState();
      this.setMember(this.members.get(this.id)!, this.incarnation, 'alive');
      this.leaveUntil = Number.POSITIVE_INFINITY;
      this.rearmSuspicions();
      this.seeds = seeds.filter((s) => s !== this.id);
      this.mode = this.seeds.length === 0 ? 'member' : 'joining';
      if (this.mode === 'member') this.queueSelfAlive();
      this.nextProbeAt = this.now;
      this.nextGossipAt = this.now;
    } else if (this.mode === 'member') {
      // A member told to join more seeds (serf's join): two clusters merge by one state
      // exchange, and the seeds are kept for rejoining when alone. One exchange in flight
      // already carries our state; the next periodic or alone-rejoin exchange follows.
      const fresh = seeds.filter((s) => s !== this.id && !this.seeds.includes(s));
      this.seeds = [...this.seeds, ...fresh];
      const first = seeds.find((s) => s !== this.id);
      if (first !== undefined && this.pushPull === undefined) this.startPushPull(first, 'join');
    }
    this.out.reply(client, { type: 'ok' });
  }

  /** Graceful leave: a Lamport-stamped intent, gossiped for `leaveGraceMs` before we go quiet. */
  private handleLeaveRequest(): void {
    if (this.mode === 'idle' || this.mode === 'leaving') return;
    this.ltime++;
    const self = this.members.get(this.id)!;
    self.ltime = this.ltime;
    this.setMember(self, this.incarnation, 'left');
    this.membershipQueue.put({
      kind: 'leave',
      id: this.id,
      incarnation: this.incarnation,
      ltime: this.ltime,
    });
    this.mode = 'leaving';
    this.probe = undefined;
    this.leaveUntil = this.now + this.config.leaveGraceMs;
    this.nextGossipAt = this.now;
  }
}
