import { assert, unreachable } from '../kernel/assert.ts';
import { type Core, OutputBuffer, type Ready } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import {
  consensusTimeoutMs,
  datagramPayloadBytes,
  type TotemConfig,
  tokenHoldMs,
  tokenRetransmitMs,
  tokenTimeoutMs,
  validateTotemConfig,
} from './config.ts';
import { allowance, SendQueue } from './flow.ts';
import {
  entriesComplete,
  liveSet,
  notYetAgreed,
  type RecoveryPlan,
  recoveryPlan,
  sameIds,
  sortedIds,
  successor,
} from './membership.ts';
import { COMMIT_ROTATION_1, COMMIT_ROTATION_2, NO_TOKEN_YET, newRing, type Ring } from './ring.ts';
import { Reassembler } from './store.ts';
import {
  type Commit,
  type CommitEntry,
  type DropReason,
  type Join,
  type Mcast,
  NO_RING,
  type Origin,
  type Probe,
  type RingId,
  ringCompare,
  ringEquals,
  type Token,
  type TotemDurable,
  type TotemMsg,
  type TotemRequest,
  type TotemState,
  type TotemStatus,
  type TotemTypes,
} from './types.ts';
import { checkMessage, type WireLimits } from './wire.ts';

/**
 * Deliberately broken behaviour, for the simulator's tests that prove its checks catch it.
 * Never set outside tests.
 */
export interface TotemUnsafeTestingFaults {
  /** Deliver the next held datagram even when one before it is missing. */
  readonly deliverAcrossGap?: boolean;
  /** Free on one rotation's aru instead of two. */
  readonly freeOneRotationEarly?: boolean;
  /** Install the new ring without re-sending the old ring's messages survivors lack. */
  readonly skipRecovery?: boolean;
}

/**
 * A Totem single-ring node (Amir et al., "The Totem single-ring ordering and membership
 * protocol", ACM TOCS 1995), as a pure core: the token orders datagrams, confirms receipt
 * and carries flow control; a lost token or a join starts the membership protocol
 * (Gather, Commit, Recovery) that forms the next ring and delivers configuration changes
 * in the stream (extended virtual synchrony).
 */
export class TotemNode implements Core<TotemTypes> {
  readonly id: NodeId;
  private readonly out = new OutputBuffer<TotemTypes>();
  private readonly tokenMs: number;
  private readonly retransmitMs: number;
  private readonly holdMs: number;
  private readonly consensusMs: number;
  private readonly limits: WireLimits;
  private readonly faults: TotemUnsafeTestingFaults;
  private readonly boot: number;
  /** Highest ring seq seen; persisted before any message that depends on it leaves. */
  private ringSeqMax: number;

  private state: TotemState = 'gather';
  /** The installed regular ring (undefined until the first one forms). */
  private regular: Ring | undefined = undefined;
  /** The ring being formed (Commit, Recovery). */
  private forming: Ring | undefined = undefined;
  private entries: readonly CommitEntry[] = [];
  private plan: RecoveryPlan | undefined = undefined;
  private recoveryQueue: Mcast[] = [];

  private procs = new Set<NodeId>();
  private failed = new Set<NodeId>();
  private readonly joins = new Map<NodeId, Join>();
  /** Consensus timeouts in a row that spared a member which answered but disagreed. */
  private consensusRounds = 0;
  /** When our sets last came to agree with every live member's (waiting for a commit token). */
  private agreedAt: number | undefined = undefined;

  private tokenAt = Number.POSITIVE_INFINITY;
  private joinAt = Number.POSITIVE_INFINITY;
  private consensusAt = Number.POSITIVE_INFINITY;
  private holdAt = Number.POSITIVE_INFINITY;
  private mergeAt = Number.POSITIVE_INFINITY;
  /** A token kept back: an idle ring's, or a singleton ring's own. */
  private held: Token | undefined = undefined;

  private readonly queue: SendQueue;
  private published = 0;
  /** Our messages not yet delivered here, and who asked (answered on local delivery). */
  private readonly awaiting = new Map<number, { client: ClientId; ref: number }>();
  private readonly assembler = new Reassembler();
  readonly drops = new Map<DropReason, number>();

  constructor(
    private readonly config: TotemConfig,
    durable: TotemDurable,
    now: number,
    faults: TotemUnsafeTestingFaults = {},
  ) {
    validateTotemConfig(config);
    this.id = config.id;
    this.tokenMs = tokenTimeoutMs(config);
    this.retransmitMs = tokenRetransmitMs(config);
    this.holdMs = tokenHoldMs(config);
    this.consensusMs = consensusTimeoutMs(config);
    this.faults = faults;
    this.limits = {
      retransmitEntriesMax: config.retransmitEntriesMax,
      membersMax: config.members.length,
      mtuBytes: config.mtuBytes,
    };
    this.queue = new SendQueue(
      config.sendQueueMessagesMax,
      config.sendQueueBytesMax,
      datagramPayloadBytes(config),
      config.mtuBytes,
    );
    this.boot = durable.boot + 1;
    this.ringSeqMax = durable.ringSeq;
    // The boot number makes message origins unique across restarts: durable before any send.
    this.out.persist({ type: 'boot', boot: this.boot });
    this.beginGather(now, undefined, true);
    this.invariants();
  }

  // --- Core contract ---------------------------------------------------------------------

  tick(now: number): void {
    if (this.state === 'gather') {
      if (now >= this.consensusAt) this.consensusExpired(now);
      else if (now >= this.joinAt) this.sendJoin(now);
    } else if (now >= this.tokenAt) {
      this.beginGather(now);
    } else {
      this.maybeRetransmit(now);
      if (now >= this.holdAt) this.releaseHeld(now);
      if (now >= this.mergeAt) this.probeForeignRings(now);
    }
    this.invariants();
  }

  receive(now: number, from: NodeId, raw: TotemMsg): void {
    this.handle(now, from, raw);
    this.invariants();
  }

  request(now: number, client: ClientId, req: TotemRequest): void {
    switch (req.type) {
      case 'publish':
        this.publish(now, client, req);
        break;
      case 'status':
        this.out.reply(client, { type: 'status', status: this.status() });
        break;
      default:
        unreachable(req, 'request');
    }
    this.invariants();
  }

  deadline(): number {
    if (this.state === 'gather') return Math.min(this.joinAt, this.consensusAt);
    const ring = this.activeRing();
    const retransmit =
      ring?.forwarded !== undefined && !ring.forwarded.evidence
        ? ring.forwarded.retransmitAt
        : Number.POSITIVE_INFINITY;
    return Math.min(this.tokenAt, this.holdAt, this.mergeAt, retransmit);
  }

  ready(): Ready<TotemTypes> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  // --- observers -------------------------------------------------------------------------

  status(): TotemStatus {
    const ring = this.activeRing() ?? this.regular;
    return {
      state: this.state,
      ring: ring?.id ?? NO_RING,
      members: ring?.members ?? [],
      aru: ring?.store.aru ?? 0,
      highSeq: ring?.store.highSeq ?? 0,
      delivered: ring?.store.delivered ?? 0,
      queued: this.queue.depth,
    };
  }

  /** Whether this node holds the token now (kept back while idle, or a singleton's). */
  holdsToken(): boolean {
    return this.held !== undefined;
  }

  // --- input dispatch --------------------------------------------------------------------

  private drop(reason: DropReason): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
    this.out.emit({ type: 'dropped', reason });
  }

  private handle(now: number, from: NodeId, raw: unknown): void {
    if (!this.config.members.includes(from) || from === this.id) {
      this.drop('unknown-sender');
      return;
    }
    const checked = checkMessage(raw, this.limits);
    if (!checked.ok) {
      this.drop(checked.reason);
      return;
    }
    const msg = checked.msg;
    switch (msg.type) {
      case 'mcast':
        this.handleMcast(now, msg);
        return;
      case 'token':
        this.handleToken(now, from, msg);
        return;
      case 'ack': {
        const fwd = this.activeRing()?.forwarded;
        const ring = this.activeRing();
        if (ring !== undefined && ringEquals(ring.id, msg.ring) && fwd?.tokenSeq === msg.tokenSeq) {
          fwd.evidence = true;
        } else this.drop('not-expected');
        return;
      }
      case 'join':
        this.handleJoin(now, from, msg);
        return;
      case 'commit':
        this.handleCommit(now, msg);
        return;
      case 'probe':
        this.handleProbe(now, from, msg);
        return;
      default:
        unreachable(msg, 'message');
    }
  }

  private activeRing(): Ring | undefined {
    switch (this.state) {
      case 'operational':
        return this.regular;
      case 'commit':
      case 'recovery':
        return this.forming;
      case 'gather':
        return undefined;
      default:
        return unreachable(this.state, 'state');
    }
  }

  private setState(state: TotemState, ring: RingId): void {
    this.state = state;
    this.out.emit({ type: 'state', state, ring });
  }

  /** Raises the persisted ring seq; the caller's messages leave only once it is durable. */
  private raiseRingSeq(seq: number): void {
    if (seq <= this.ringSeqMax) return;
    this.ringSeqMax = seq;
    this.out.persist({ type: 'ringSeq', seq });
  }

  // --- clients ---------------------------------------------------------------------------

  private publish(
    now: number,
    client: ClientId,
    req: Extract<TotemRequest, { type: 'publish' }>,
  ): void {
    const { ref, data } = req;
    if (data.length > this.config.messageBytesMax) {
      const detail = `${data.length} bytes is above messageBytesMax (${this.config.messageBytesMax})`;
      this.out.reply(client, { type: 'refused', ref, reason: 'too-large', detail });
      return;
    }
    if (!this.queue.fits(data.length) || this.awaiting.size >= this.config.sendQueueMessagesMax) {
      const depth = Math.max(this.queue.depth, this.awaiting.size);
      this.out.reply(client, { type: 'backpressure', ref, depth, bytes: this.queue.bytes });
      return;
    }
    const origin: Origin = { node: this.id, boot: this.boot, n: ++this.published };
    this.queue.push(origin, req.mode, data);
    this.awaiting.set(origin.n, { client, ref });
    if (this.held !== undefined && this.state === 'operational') this.releaseHeld(now);
  }

  // --- datagrams -------------------------------------------------------------------------

  private handleMcast(now: number, m: Mcast): void {
    const reg = this.regular;
    const form = this.forming;
    let ring: Ring;
    if (reg !== undefined && ringEquals(m.ring, reg.id)) {
      // Once Recovery has fixed what the old ring delivers, late copies would only make
      // survivors differ; they arrive, if needed, re-sent in the new ring.
      if (this.state === 'recovery') {
        this.drop('not-expected');
        return;
      }
      ring = reg;
    } else if (form !== undefined && ringEquals(m.ring, form.id)) {
      ring = form;
    } else {
      this.drop('foreign-ring');
      return;
    }
    if (!ring.members.includes(m.sender)) {
      this.drop('malformed');
      return;
    }
    if (m.seq > ring.store.aru + this.config.storeSpanMax) {
      this.drop('out-of-window');
      return;
    }
    if (!ring.store.add(m)) {
      this.drop('duplicate');
      return;
    }
    this.observeReceived(ring.id, m.seq);
    const fwd = ring.forwarded;
    if (fwd !== undefined && m.seq > fwd.seq) fwd.evidence = true;
    if (ring === this.activeRing() && ring.members.length > 1) this.tokenAt = now + this.tokenMs;
    if (m.old !== null && ring === form && reg !== undefined && ringEquals(m.old.ring, reg.id)) {
      if (m.old.seq <= (this.plan?.high ?? 0) && reg.store.add(m.old)) {
        this.observeReceived(reg.id, m.old.seq);
      }
    }
    if (this.state === 'operational' && ring === reg) this.deliverRing(ring);
  }

  private observeReceived(ring: RingId, seq: number): void {
    if (this.config.observe) this.out.emit({ type: 'received', ring, seq });
  }

  private broadcast(ring: Ring, m: Mcast): void {
    for (const to of ring.members) if (to !== this.id) this.out.send(to, m);
  }

  /** The next datagram to send at this visit: an old ring's in Recovery, else from the queue. */
  private nextDatagram(ring: Ring, seq: number): Mcast | undefined {
    if (this.state === 'recovery') {
      const old = this.recoveryQueue.shift();
      if (old === undefined) return undefined;
      return { type: 'mcast', ring: ring.id, seq, sender: this.id, mode: old.mode, items: [], old };
    }
    const packed = this.queue.take();
    if (packed === undefined) return undefined;
    return {
      type: 'mcast',
      ring: ring.id,
      seq,
      sender: this.id,
      mode: packed.mode,
      items: packed.items,
      old: null,
    };
  }

  // --- the token -------------------------------------------------------------------------

  private handleToken(now: number, from: NodeId, t: Token): void {
    const ring = this.activeRing();
    if (ring === undefined || !ringEquals(t.ring, ring.id) || this.state === 'commit') {
      this.drop('foreign-ring');
      return;
    }
    if (t.tokenSeq <= ring.lastTokenSeq) {
      // A retransmission of the token we took: tell the sender we are alive.
      if (t.tokenSeq === ring.lastTokenSeq) {
        this.out.send(from, { type: 'ack', ring: ring.id, tokenSeq: t.tokenSeq });
      }
      this.drop('stale-token');
      return;
    }
    this.visit(now, ring, t);
  }

  /** One token visit (paper §3): resend what others miss, send new, update aru, forward. */
  private visit(now: number, ring: Ring, t: Token): void {
    assert(t.tokenSeq > ring.lastTokenSeq, 'a token is accepted once');
    ring.lastTokenSeq = t.tokenSeq;
    ring.visits++;
    if (ring.forwarded !== undefined) ring.forwarded.evidence = true;
    this.out.emit({ type: 'token', ring: ring.id, tokenSeq: t.tokenSeq });
    const multi = ring.members.length > 1;
    this.tokenAt = multi ? now + this.tokenMs : Number.POSITIVE_INFINITY;
    if (this.state === 'recovery' && !t.recovery) this.finishRecovery(now);
    const recovering = this.state === 'recovery';
    // The aru stayed at least min(previous, now) for the whole rotation between our visits.
    ring.safeUpTo = Math.max(ring.safeUpTo, Math.min(ring.prevAruIn, t.aru));
    const aruOneRotation = t.aru;
    ring.prevAruIn = t.aru;

    const backlogBefore = recovering ? this.recoveryQueue.length : this.queue.depth;
    const fccOthers = Math.max(0, t.fcc - ring.lastSent);
    const othersBacklog = Math.max(0, t.backlog - ring.lastBacklog);
    const cfg = this.config;
    const budget = allowance(
      cfg.windowSize,
      cfg.maxMessagesPerVisit,
      fccOthers,
      backlogBefore,
      othersBacklog + backlogBefore,
    );

    const rtr: number[] = [];
    let resent = 0;
    for (const s of t.rtr) {
      const m = ring.store.get(s);
      if (m !== undefined && resent < budget) {
        this.broadcast(ring, m);
        resent++;
      } else rtr.push(s);
    }
    let seq = t.seq;
    let sent = 0;
    while (resent + sent < budget) {
      const m = this.nextDatagram(ring, seq + 1);
      if (m === undefined) break;
      seq++;
      sent++;
      ring.store.add(m);
      this.observeAssigned(m);
      this.broadcast(ring, m);
    }
    const skip = new Set(rtr);
    for (const s of ring.store.missing(seq, cfg.retransmitEntriesMax - rtr.length, skip)) {
      rtr.push(s);
    }
    let aru = t.aru;
    let aruId = t.aruId;
    const mine = ring.store.aru;
    if (mine < aru || aruId === this.id || aruId === 0) {
      aru = mine;
      aruId = aru === seq ? 0 : this.id;
    }
    const idle =
      !recovering &&
      resent + sent === 0 &&
      t.rtr.length === 0 &&
      t.aru === t.seq &&
      t.seq === ring.prevSeqOut;
    let recovery = t.recovery;
    if (recovering) {
      const quiet =
        ring.visits >= 2 &&
        othersBacklog === 0 &&
        backlogBefore === 0 &&
        t.aru === t.seq &&
        t.rtr.length === 0 &&
        t.seq === ring.prevSeqOut;
      ring.quietVisits = quiet ? ring.quietVisits + 1 : 0;
    }
    ring.prevSeqOut = seq;
    const backlogAfter = recovering ? this.recoveryQueue.length : this.queue.depth;
    ring.lastSent = resent + sent;
    ring.lastBacklog = backlogAfter;
    if (recovering && ring.quietVisits >= 2) {
      // Everyone holds every re-sent datagram (aru = seq for a full rotation with nothing
      // left to send): Recovery is complete, and the cleared flag tells the others.
      recovery = false;
      this.finishRecovery(now);
    }
    if (this.state === 'operational') {
      this.deliverRing(ring);
      const bound = this.faults.freeOneRotationEarly ? aruOneRotation : ring.safeUpTo;
      this.freeRing(ring, bound);
    }
    this.out.emit({ type: 'visit', ring: ring.id, sent, resent });
    const next: Token = {
      type: 'token',
      ring: ring.id,
      tokenSeq: t.tokenSeq + 1,
      seq,
      aru,
      aruId,
      rtr,
      fcc: fccOthers + resent + sent,
      backlog: othersBacklog + backlogAfter,
      recovery,
    };
    ring.emptyVisits = idle ? ring.emptyVisits + 1 : 0;
    this.passOn(now, ring, next);
  }

  /** Forwards the token, or keeps it: a singleton ring's, or an idle ring's at its representative. */
  private passOn(now: number, ring: Ring, next: Token): void {
    if (ring.members.length === 1) {
      this.held = next;
      const more = this.queue.depth > 0 || ring.store.delivered < ring.store.highSeq;
      this.holdAt = more ? now : Number.POSITIVE_INFINITY;
      return;
    }
    const idleLong = ring.emptyVisits >= this.config.emptyRotationsBeforeHold;
    if (
      this.state === 'operational' &&
      ring.id.rep === this.id &&
      idleLong &&
      this.queue.depth === 0
    ) {
      this.held = next;
      this.holdAt = now + this.holdMs;
      return;
    }
    this.forward(now, ring, next);
  }

  private releaseHeld(now: number): void {
    const t = this.held;
    const ring = this.regular;
    if (t === undefined || ring === undefined) return;
    this.held = undefined;
    this.holdAt = Number.POSITIVE_INFINITY;
    if (ring.members.length === 1 || this.queue.depth > 0) this.visit(now, ring, t);
    else this.forward(now, ring, t);
  }

  private forward(now: number, ring: Ring, msg: Token | Commit): void {
    const to = successor(ring.members, this.id);
    this.out.send(to, msg);
    const tokenSeq =
      msg.type === 'token'
        ? msg.tokenSeq
        : msg.rotation === 1
          ? COMMIT_ROTATION_1
          : COMMIT_ROTATION_2;
    ring.forwarded = {
      msg,
      to,
      at: now,
      tokenSeq,
      seq: msg.type === 'token' ? msg.seq : 0,
      evidence: false,
      retransmitAt: now + this.retransmitMs,
    };
  }

  /** Resends the token we passed on until the successor shows it took it (corosync token_retransmit). */
  private maybeRetransmit(now: number): void {
    const fwd = this.activeRing()?.forwarded;
    if (fwd === undefined || fwd.evidence || now < fwd.retransmitAt) return;
    this.out.send(fwd.to, fwd.msg);
    fwd.retransmitAt = now + this.retransmitMs;
  }

  /** Whether our successor seems never to have taken the token (faster re-forming). */
  private silentSuccessor(now: number): NodeId | undefined {
    const fwd = this.activeRing()?.forwarded;
    // Only the regular token: a commit token is refused, unanswered, by a member that
    // joined another ring, which says nothing about whether it is alive.
    if (fwd === undefined || fwd.evidence || fwd.msg.type !== 'token') return undefined;
    // Older than a token timeout, the silence is ours (a pause), not our successor's.
    const age = now - fwd.at;
    return age >= 2 * this.retransmitMs && age <= this.tokenMs + this.retransmitMs
      ? fwd.to
      : undefined;
  }

  private observeAssigned(m: Mcast): void {
    if (!this.config.observe) return;
    const completes = m.items.filter((i) => i.part === i.parts - 1).map((i) => i.origin);
    this.out.emit({ type: 'assigned', ring: m.ring, seq: m.seq, completes });
    this.out.emit({ type: 'received', ring: m.ring, seq: m.seq });
  }

  // --- delivery --------------------------------------------------------------------------

  /** Delivers the regular ring's datagrams in order: agreed when contiguous, safe once safe. */
  private deliverRing(ring: Ring): void {
    const store = ring.store;
    for (;;) {
      const s = store.delivered + 1;
      const m = store.get(s);
      if (m === undefined) {
        if (!this.faults.deliverAcrossGap || s > store.highSeq) return;
        let next = s + 1;
        while (next <= store.highSeq && store.get(next) === undefined) next++;
        if (next > store.highSeq) return;
        store.delivered = next - 1;
        continue;
      }
      if (m.old !== null) {
        store.delivered = s;
        continue;
      }
      if (m.mode === 'safe' && s > ring.safeUpTo) return;
      this.deliverDatagram(ring.id, m, 'regular');
      store.delivered = s;
    }
  }

  private deliverDatagram(ring: RingId, m: Mcast, phase: 'regular' | 'transitional'): void {
    for (const item of m.items) {
      const data = this.assembler.add(item);
      if (data === undefined) continue;
      const origin = item.origin;
      this.out.deliver({
        type: 'message',
        ring,
        seq: m.seq,
        origin,
        mode: m.mode,
        data,
        in: phase,
      });
      if (origin.node !== this.id || origin.boot !== this.boot) continue;
      const asker = this.awaiting.get(origin.n);
      if (asker === undefined) continue;
      this.awaiting.delete(origin.n);
      this.out.reply(asker.client, {
        type: 'published',
        ref: asker.ref,
        origin,
        ring,
        seq: m.seq,
      });
    }
  }

  /** Frees datagrams every member holds (aru for two rotations) that we delivered. */
  private freeRing(ring: Ring, aruBound: number): void {
    const upTo = Math.min(aruBound, ring.store.delivered, ring.store.aru);
    if (ring.store.free(upTo)) this.out.emit({ type: 'freed', ring: ring.id, upTo });
  }

  // --- membership: Gather ----------------------------------------------------------------

  /** Starts (or continues) a membership round; the first join names a silent successor failed. */
  private beginGather(now: number, extra?: NodeId, boot = false): void {
    if (this.state !== 'gather' || boot) {
      this.procs = new Set([this.id, ...(this.regular?.members ?? [])]);
      for (const m of this.forming?.members ?? []) this.procs.add(m);
      this.failed = new Set();
      const silent = this.silentSuccessor(now);
      if (silent !== undefined) this.failed.add(silent);
      this.joins.clear();
      this.consensusRounds = 0;
      this.agreedAt = undefined;
      if (this.regular !== undefined) this.regular.forwarded = undefined;
      this.forming = undefined;
      this.plan = undefined;
      this.recoveryQueue = [];
      this.held = undefined;
      this.holdAt = Number.POSITIVE_INFINITY;
      this.tokenAt = Number.POSITIVE_INFINITY;
      this.mergeAt = Number.POSITIVE_INFINITY;
      this.consensusAt = now + this.consensusMs;
      this.setState('gather', this.regular?.id ?? NO_RING);
    }
    if (extra !== undefined) this.procs.add(extra);
    this.sendJoin(now);
  }

  private sendJoin(now: number): void {
    const join: Join = {
      type: 'join',
      sender: this.id,
      procs: sortedIds(this.procs),
      failed: sortedIds(this.failed),
      ringSeq: this.ringSeqMax,
    };
    for (const to of this.config.members) if (to !== this.id) this.out.send(to, join);
    this.joinAt = now + this.config.joinMs;
  }

  private handleJoin(now: number, from: NodeId, j: Join): void {
    const known = this.config.members;
    if (j.sender !== from) {
      this.drop('malformed');
      return;
    }
    if (!j.procs.every((p) => known.includes(p)) || !j.failed.every((p) => known.includes(p))) {
      this.drop('unknown-sender');
      return;
    }
    // A join sent before our current ring formed (its ring seq is below the ring's) is stale.
    const ring = this.activeRing() ?? this.regular;
    if (ring?.members.includes(from) && j.ringSeq < ring.id.seq) {
      this.drop('stale-join');
      return;
    }
    // While a ring forms, only one of its own members gathering again stops it; an outsider
    // is merged once the ring is operational (its probe or its next join starts that).
    if ((this.state === 'commit' || this.state === 'recovery') && !ring!.members.includes(from)) {
      this.drop('not-expected');
      return;
    }
    // An outsider that counts us failed is forming without us; merge detection reunites us
    // once it is operational (gathering now would only re-form our ring, again and again).
    if (this.state === 'operational' && j.failed.includes(this.id)) {
      this.drop('not-expected');
      return;
    }
    if (this.state !== 'gather') this.beginGather(now);
    this.gatherJoin(now, j);
  }

  /** Join processing in Gather (corosync memb_join_process): merge sets, detect consensus. */
  private gatherJoin(now: number, j: Join): void {
    const from = j.sender;
    if (this.failed.has(from)) return;
    if (j.failed.includes(this.id)) {
      // It counts us failed: then it is failed to us, and the two sides form apart.
      this.failed.add(from);
      this.procs.add(from);
      this.sendJoin(now);
      this.maybeConsensus(now);
      return;
    }
    this.joins.set(from, j);
    let changed = false;
    for (const p of j.procs) {
      if (!this.procs.has(p)) {
        this.procs.add(p);
        changed = true;
      }
    }
    // Only a ring-mate's join may count one of our ring-mates failed: an outsider's view of
    // them comes from another ring (or from before a pause) and says nothing about them now.
    const mates = this.regular?.members ?? [];
    const outsider = !mates.includes(from);
    for (const f of j.failed) {
      if (outsider && mates.includes(f)) continue;
      if (!this.failed.has(f)) {
        this.failed.add(f);
        this.procs.add(f);
        changed = true;
      }
    }
    if (changed) this.sendJoin(now);
    this.maybeConsensus(now);
  }

  private maybeConsensus(now: number): void {
    if (notYetAgreed(this.id, this.procs, this.failed, this.joins).length > 0) {
      this.agreedAt = undefined;
      return;
    }
    const live = liveSet(this.procs, this.failed);
    if (live[0] !== this.id) {
      this.agreedAt ??= now;
      return;
    }
    if (live.length === 1) {
      this.formSingleton(now);
      return;
    }
    let seq = this.ringSeqMax;
    for (const m of live) seq = Math.max(seq, this.joins.get(m)?.ringSeq ?? 0);
    const id: RingId = { seq: seq + 1, rep: this.id };
    this.raiseRingSeq(id.seq);
    this.forming = newRing(id, live);
    this.enterCommit(now);
    const commit: Commit = {
      type: 'commit',
      ring: id,
      members: live,
      entries: [this.myEntry()],
      rotation: 1,
    };
    this.forward(now, this.forming, commit);
  }

  private consensusExpired(now: number): void {
    const pending = notYetAgreed(this.id, this.procs, this.failed, this.joins);
    const live = liveSet(this.procs, this.failed);
    // Members silent all round have failed; one that did answer but still disagrees gets one
    // more round (its sets may have changed at its own timeout, an instant before ours).
    const silent = pending.filter((p) => !this.joins.has(p) || this.consensusRounds > 0);
    if (pending.length > 0) for (const p of silent) this.failed.add(p);
    else if (live[0] !== this.id && live[0] !== undefined) {
      // Agreed, but the representative's commit token never came in a whole round.
      if (this.agreedAt !== undefined && now - this.agreedAt >= this.consensusMs) {
        this.failed.add(live[0]);
      } else {
        this.consensusAt = now + this.consensusMs;
        return;
      }
    }
    this.agreedAt = undefined;
    this.consensusRounds = silent.length < pending.length ? this.consensusRounds + 1 : 0;
    this.joins.clear();
    this.consensusAt = now + this.consensusMs;
    const left = liveSet(this.procs, this.failed);
    if (left.length === 1) {
      this.formSingleton(now);
      return;
    }
    this.sendJoin(now);
    this.maybeConsensus(now);
  }

  private myEntry(): CommitEntry {
    const r = this.regular;
    if (r === undefined) return { id: this.id, oldRing: NO_RING, aru: 0, highSeq: 0, delivered: 0 };
    const s = r.store;
    return { id: this.id, oldRing: r.id, aru: s.aru, highSeq: s.highSeq, delivered: s.delivered };
  }

  private enterCommit(now: number): void {
    this.joinAt = Number.POSITIVE_INFINITY;
    this.consensusAt = Number.POSITIVE_INFINITY;
    this.tokenAt = now + this.tokenMs;
    this.setState('commit', this.forming!.id);
  }

  // --- membership: Commit ----------------------------------------------------------------

  private handleCommit(now: number, c: Commit): void {
    const form = this.forming;
    const mine = form !== undefined && ringEquals(form.id, c.ring);
    if (!c.members.includes(this.id)) {
      this.drop('not-expected');
      return;
    }
    if (c.rotation === 1) {
      if (this.state === 'gather' && c.ring.rep !== this.id) this.acceptCommit(now, c);
      else if (this.state === 'commit' && mine && c.ring.rep === this.id) {
        if (!entriesComplete(c.entries, c.members)) this.drop('malformed');
        else {
          form.forwarded = undefined;
          this.enterRecovery(now, c.entries);
          this.forward(now, form, { ...c, rotation: 2 });
        }
      } else this.drop('not-expected');
      return;
    }
    if (!entriesComplete(c.entries, c.members)) {
      this.drop('malformed');
      return;
    }
    if (this.state === 'commit' && mine && c.ring.rep !== this.id) {
      form.lastTokenSeq = COMMIT_ROTATION_2;
      this.enterRecovery(now, c.entries);
      this.forward(now, form, c);
      return;
    }
    const ring = this.activeRing();
    const back = ring !== undefined && ringEquals(ring.id, c.ring) && c.ring.rep === this.id;
    if (back && ring.lastTokenSeq === NO_TOKEN_YET) {
      // The commit token went round twice: every member is in Recovery; the ring's token starts.
      ring.forwarded = undefined;
      this.visit(now, ring, {
        type: 'token',
        ring: ring.id,
        tokenSeq: 0,
        seq: 0,
        aru: 0,
        aruId: 0,
        rtr: [],
        fcc: 0,
        backlog: 0,
        recovery: this.state === 'recovery',
      });
      return;
    }
    this.drop('not-expected');
  }

  /** First rotation at a member: the set must be ours, the ring new; add our entry, pass on. */
  private acceptCommit(now: number, c: Commit): void {
    const live = liveSet(this.procs, this.failed);
    if (!sameIds(live, c.members) || c.ring.seq <= this.ringSeqMax) {
      this.drop('not-expected');
      return;
    }
    if (c.entries.some((e) => e.id === this.id)) {
      this.drop('malformed');
      return;
    }
    this.raiseRingSeq(c.ring.seq);
    const form = newRing(c.ring, c.members);
    form.lastTokenSeq = COMMIT_ROTATION_1;
    this.forming = form;
    this.enterCommit(now);
    this.forward(now, form, { ...c, entries: [...c.entries, this.myEntry()] });
  }

  // --- membership: Recovery --------------------------------------------------------------

  private enterRecovery(now: number, entries: readonly CommitEntry[]): void {
    const form = this.forming!;
    this.entries = entries;
    this.tokenAt = now + this.tokenMs;
    this.setState('recovery', form.id);
    const reg = this.regular;
    this.recoveryQueue = [];
    if (reg === undefined) {
      this.plan = undefined;
    } else {
      const plan = recoveryPlan(entries, reg.id);
      this.plan = plan;
      if (plan.survivors.length >= 2 && !this.faults.skipRecovery) {
        this.recoveryQueue = reg.store.heldBetween(plan.low, plan.high);
      }
    }
    if (this.faults.skipRecovery) this.finishRecovery(now);
  }

  /**
   * Recovery is complete: deliver the old ring's rest (in its regular configuration while
   * contiguous and confirmed, then in the transitional one), then the new regular one.
   */
  private finishRecovery(now: number): void {
    const next = this.forming!;
    const old = this.regular;
    assert(this.recoveryQueue.length === 0, 'Recovery ends with nothing left to re-send');
    if (old !== undefined) {
      const plan = this.plan ?? recoveryPlan(this.entries, old.id);
      const store = old.store;
      for (;;) {
        const s = store.delivered + 1;
        const m = store.get(s);
        if (s > plan.high || m === undefined) break;
        if (m.old === null) {
          if (m.mode === 'safe' && s > old.safeUpTo) break;
          this.deliverDatagram(old.id, m, 'regular');
        }
        store.delivered = s;
      }
      this.out.deliver({
        type: 'config',
        kind: 'transitional',
        ring: old.id,
        members: plan.survivors,
      });
      for (const m of store.heldBetween(store.delivered, plan.high)) {
        if (m.old === null) this.deliverDatagram(old.id, m, 'transitional');
        store.delivered = m.seq;
      }
    }
    this.assembler.clear();
    this.queue.restartHead();
    this.out.deliver({ type: 'config', kind: 'regular', ring: next.id, members: next.members });
    this.regular = next;
    this.forming = undefined;
    this.plan = undefined;
    this.entries = [];
    this.setState('operational', next.id);
    const outside = this.config.members.some((m) => !next.members.includes(m));
    this.mergeAt =
      next.id.rep === this.id && outside ? now + this.config.mergeMs : Number.POSITIVE_INFINITY;
    this.deliverRing(next);
  }

  private formSingleton(now: number): void {
    const id: RingId = { seq: this.ringSeqMax + 1, rep: this.id };
    this.raiseRingSeq(id.seq);
    this.forming = newRing(id, [this.id]);
    this.enterCommit(now);
    this.enterRecovery(now, [this.myEntry()]);
    if (this.state === 'recovery') this.finishRecovery(now);
    const ring = this.regular!;
    this.visit(now, ring, {
      type: 'token',
      ring: id,
      tokenSeq: 0,
      seq: 0,
      aru: 0,
      aruId: 0,
      rtr: [],
      fcc: 0,
      backlog: 0,
      recovery: false,
    });
  }

  // --- merge detection -------------------------------------------------------------------

  private probeForeignRings(now: number): void {
    const ring = this.regular;
    if (this.state !== 'operational' || ring === undefined) return;
    const probe: Probe = { type: 'probe', ring: ring.id };
    for (const m of this.config.members) if (!ring.members.includes(m)) this.out.send(m, probe);
    this.mergeAt = now + this.config.mergeMs;
  }

  private handleProbe(now: number, from: NodeId, p: Probe): void {
    const ring = this.regular;
    if (this.state !== 'operational' || ring === undefined) return;
    if (ring.members.includes(from) || ringEquals(p.ring, ring.id)) return;
    this.beginGather(now, from);
  }

  // --- invariants ------------------------------------------------------------------------

  /** Asserted at the end of every input. */
  private invariants(): void {
    const reg = this.regular;
    const form = this.forming;
    switch (this.state) {
      case 'operational':
        assert(
          reg !== undefined && form === undefined,
          'operational: a regular ring, none forming',
        );
        break;
      case 'commit':
      case 'recovery':
        assert(form !== undefined, `${this.state}: a ring is forming`);
        break;
      case 'gather':
        assert(form === undefined && this.procs.has(this.id), 'gather: we are a process');
        assert(this.joinAt < Number.POSITIVE_INFINITY, 'gather: a join is scheduled');
        break;
      default:
        unreachable(this.state, 'state');
    }
    assert(!this.failed.has(this.id), 'we never count ourselves failed');
    for (const ring of [reg, form]) {
      if (ring === undefined) continue;
      const s = ring.store;
      assert(ring.members.includes(this.id), 'we are on our rings');
      assert(s.freed <= s.delivered && s.freed <= s.aru, 'freed only what we delivered and hold');
      assert(s.aru <= s.highSeq, 'aru is at most the highest seq');
      assert(ring.safeUpTo <= Math.max(s.highSeq, ring.prevAruIn), 'safe only what exists');
      assert(
        ringCompare(ring.id, NO_RING) > 0 && ring.id.seq <= this.ringSeqMax,
        'ring seq persisted',
      );
      if (!this.faults.deliverAcrossGap && this.state === 'operational' && ring === reg) {
        assert(s.delivered <= s.aru, 'delivered only contiguous datagrams');
      }
    }
    assert(this.queue.depth <= this.config.sendQueueMessagesMax, 'send queue bounded');
    assert(this.awaiting.size <= this.config.sendQueueMessagesMax, 'awaiting bounded');
    assert(this.assembler.inProgress <= this.config.members.length, 'one partial per origin');
    assert(this.recoveryQueue.length <= this.config.storeSpanMax * 2, 'recovery queue bounded');
  }
}
