import { assert, unreachable } from '../kernel/assert.ts';
import { OutputBuffer } from '../kernel/core.ts';
import type { NodeId } from '../kernel/ids.ts';
import { RumourQueue } from './broadcast.ts';
import { type GossipConfig, retransmitLimit, validateGossipConfig } from './config.ts';
import { EventLog } from './events.ts';
import { memberHash } from './hash.ts';
import { Suspicion } from './suspicion.ts';
import type {
  DropReason,
  GossipDurable,
  GossipTypes,
  MemberRecord,
  MemberStatus,
  Rumour,
  UserEvent,
} from './types.ts';
import { utf8Bytes } from './wire.ts';

export interface Member {
  readonly id: NodeId;
  incarnation: number;
  status: MemberStatus;
  tags: string;
  /** Local time of the last status change. */
  changedAt: number;
  /** Lamport time of its leave intent (0: none). */
  ltime: number;
}

/** idle: not in a cluster (never joined, or left). leaving: spreading our leave intent. */
export type GossipMode = 'idle' | 'joining' | 'member' | 'leaving';

export interface GossipStats {
  readonly dropped: Record<DropReason, number>;
  probes: number;
  failedProbes: number;
  suspicions: number;
  refutations: number;
  pushPulls: number;
  pauses: number;
  reaped: number;
}

/**
 * The membership half of a gossip node: the member table with its incremental digest hash,
 * and SWIM's rules for applying alive, suspect, dead and leave rumours (incarnation
 * precedence, refutation, Lifeguard confirmations, re-gossip of an accusation against a
 * stale alive). `GossipNode` adds probing, gossip rounds, push-pull and events on top.
 */
export abstract class MembershipCore {
  readonly id: NodeId;
  readonly stats: GossipStats = {
    dropped: { malformed: 0, 'too-large': 0, misdirected: 0, 'members-full': 0, 'not-member': 0 },
    probes: 0,
    failedProbes: 0,
    suspicions: 0,
    refutations: 0,
    pushPulls: 0,
    pauses: 0,
    reaped: 0,
  };
  protected readonly out = new OutputBuffer<GossipTypes>();
  protected readonly members = new Map<NodeId, Member>();
  /** Members in the order we learned them: digest slices rotate over it. */
  protected readonly order: NodeId[] = [];
  protected readonly membershipQueue: RumourQueue;
  protected readonly suspicions = new Map<NodeId, Suspicion>();
  /**
   * Members we reaped, with the incarnation they had and when: for another reap interval a
   * stale alive at or below that incarnation, or a dead or left record from a peer that has
   * not reaped yet, is refused instead of bringing the member back (bounded by membersMax).
   */
  protected readonly reaped = new Map<
    NodeId,
    { readonly incarnation: number; readonly at: number }
  >();
  protected readonly log: EventLog;
  protected abstract mode: GossipMode;
  protected incarnation: number;
  protected eventSeq: number;
  protected ltime = 0;
  protected health = 0;
  protected hash = 0;
  /** Members not dead or left, ourselves included: the n of every formula. */
  protected aliveCount = 1;
  protected now: number;

  constructor(
    protected readonly config: GossipConfig,
    durable: GossipDurable | undefined,
    now: number,
  ) {
    validateGossipConfig(config);
    assert(
      utf8Bytes(config.tags) <= config.tagsBytesMax,
      `tags exceed tagsBytesMax (${config.tagsBytesMax} bytes)`,
    );
    this.id = config.id;
    this.now = now;
    const forget = config.unsafeTestingFaults?.forgetIncarnation === true;
    this.incarnation = durable === undefined || forget ? 1 : durable.incarnation + 1;
    this.eventSeq = durable?.eventSeq ?? 0;
    this.membershipQueue = new RumourQueue(config.membersMax);
    this.log = new EventLog(
      config.eventsRetainedMax,
      config.eventsRetentionMs,
      config.membersMax,
      config.eventHoleTimeoutMs,
      (d) => this.out.deliver(d),
      // Event heads stay out of the hash: with events flowing it would never match. Digest
      // slices carry heads instead.
      () => {},
    );
    this.addMember({
      id: this.id,
      incarnation: this.incarnation,
      status: 'alive',
      tags: config.tags,
      changedAt: now,
      ltime: 0,
    });
    this.persistHardState();
    // A restarted origin reads its own events on from the last one it published.
    this.log.follow(this.id, this.eventSeq);
  }

  /** An event rumour arrived; the node decides how to spread it. */
  protected abstract receiveEvent(e: UserEvent): 'new' | 'known' | 'full';
  /** A death became known here: the node gossips it now rather than at its next round. */
  protected abstract spreadSoon(): void;

  // --- views for hosts, monitors and tests ---------------------------------------------------

  /** The local time of the last input. */
  get clock(): number {
    return this.now;
  }
  get currentMode(): GossipMode {
    return this.mode;
  }
  get selfIncarnation(): number {
    return this.incarnation;
  }
  get healthScore(): number {
    return this.health;
  }
  get membershipHash(): number {
    return this.hash;
  }
  member(id: NodeId): MemberRecord | undefined {
    const m = this.members.get(id);
    return m === undefined
      ? undefined
      : { id: m.id, incarnation: m.incarnation, status: m.status, tags: m.tags };
  }
  memberRecords(): MemberRecord[] {
    return [...this.members.values()].map((m) => ({
      id: m.id,
      incarnation: m.incarnation,
      status: m.status,
      tags: m.tags,
    }));
  }
  /** Open suspicions: when each started and the latest it may end, both local times. */
  openSuspicions(): {
    readonly about: NodeId;
    readonly startedAt: number;
    readonly latestAt: number;
  }[] {
    return [...this.suspicions.values()].map((s) => ({
      about: s.about,
      startedAt: s.startedAt,
      latestAt: s.latestAt(),
    }));
  }
  /** The most times a queued membership rumour was sent, and the limit it must stay within. */
  retransmits(): { readonly max: number; readonly limit: number } {
    return {
      max: this.membershipQueue.maxTransmits(),
      limit: retransmitLimit(this.config.retransmitMult, this.aliveCount),
    };
  }
  eventHead(origin: NodeId): number {
    return this.log.head(origin);
  }
  /** Recomputes the membership hash from scratch (tests hold it against the incremental one). */
  recomputeHash(): number {
    let h = 0;
    for (const m of this.members.values())
      h = (h + hashPart(m.id, m.incarnation, isGone(m.status))) >>> 0;
    return h;
  }

  protected drop(reason: DropReason): void {
    this.stats.dropped[reason]++;
    this.out.emit({ type: 'dropped', reason });
  }

  // --- members --------------------------------------------------------------------------

  protected addMember(m: Member): void {
    this.members.set(m.id, m);
    this.order.push(m.id);
    this.hash = (this.hash + hashPart(m.id, m.incarnation, isGone(m.status))) >>> 0;
    if (m.id !== this.id && !isGone(m.status)) this.aliveCount++;
  }

  /** Every change of a member goes through here, so the hash and the alive count stay exact. */
  protected setMember(m: Member, incarnation: number, status: MemberStatus): void {
    const wasGone = isGone(m.status);
    this.hash = (this.hash - hashPart(m.id, m.incarnation, wasGone)) >>> 0;
    if (m.status !== status) m.changedAt = this.now;
    m.incarnation = incarnation;
    m.status = status;
    this.hash = (this.hash + hashPart(m.id, m.incarnation, isGone(status))) >>> 0;
    if (m.id !== this.id && wasGone !== isGone(status)) this.aliveCount += wasGone ? 1 : -1;
    this.out.emit({ type: 'member', about: m.id, status, incarnation });
  }

  /**
   * Forgets members dead for `reapDeadMs` or left for `reapLeftMs` (local time of the
   * change), and reaped memories older than the longer of the two. O(members): the node
   * calls it once a second, not every tick.
   */
  protected reap(now: number): void {
    const c = this.config;
    for (const [id, r] of this.reaped) {
      if (now - r.at >= Math.max(c.reapDeadMs, c.reapLeftMs)) this.reaped.delete(id);
    }
    let gone: NodeId[] | undefined;
    for (const m of this.members.values()) {
      const age = now - m.changedAt;
      if (
        (m.status === 'dead' && age >= c.reapDeadMs) ||
        (m.status === 'left' && age >= c.reapLeftMs)
      ) {
        gone ??= [];
        gone.push(m.id);
      }
    }
    if (gone === undefined) return;
    for (const id of gone) this.removeMember(id, now);
    const keep = new Set(this.members.keys());
    const order = this.order.filter((id) => keep.has(id));
    this.order.length = 0;
    this.order.push(...order);
  }

  private removeMember(id: NodeId, now: number): void {
    const m = this.members.get(id)!;
    assert(id !== this.id && isGone(m.status), 'only a gone member other than us is reaped');
    this.members.delete(id);
    this.suspicions.delete(id);
    if (this.reaped.size >= this.config.membersMax) {
      const oldest = this.reaped.keys().next();
      if (oldest.done !== true) this.reaped.delete(oldest.value);
    }
    this.reaped.set(id, { incarnation: m.incarnation, at: now });
    this.stats.reaped++;
    this.out.emit({ type: 'reaped', about: id, incarnation: m.incarnation });
  }

  protected rumourFor(m: Member): Rumour {
    switch (m.status) {
      case 'alive':
        return { kind: 'alive', id: m.id, incarnation: m.incarnation, tags: m.tags };
      case 'suspect':
        return { kind: 'suspect', id: m.id, incarnation: m.incarnation, from: this.id };
      case 'dead':
        return { kind: 'dead', id: m.id, incarnation: m.incarnation, from: this.id };
      case 'left':
        return { kind: 'leave', id: m.id, incarnation: m.incarnation, ltime: m.ltime };
      default:
        return unreachable(m.status, 'member status');
    }
  }

  protected queueSelfAlive(): void {
    this.membershipQueue.put(this.rumourFor(this.members.get(this.id)!));
  }

  protected persistHardState(): void {
    this.out.persist({
      type: 'hard-state',
      incarnation: this.incarnation,
      eventSeq: this.eventSeq,
    });
  }

  /** Someone holds us suspect or dead at `accused`: announce a higher incarnation (SWIM 4.2). */
  protected refute(accused: number): void {
    if (this.mode !== 'member' || this.config.unsafeTestingFaults?.noRefutation === true) return;
    if (accused < this.incarnation) return;
    this.incarnation = accused + 1;
    this.persistHardState();
    const self = this.members.get(this.id)!;
    this.setMember(self, this.incarnation, 'alive');
    this.queueSelfAlive();
    this.stats.refutations++;
    this.bumpHealth(1);
    this.out.emit({ type: 'refute', incarnation: this.incarnation });
  }

  protected bumpHealth(delta: number): void {
    if (!this.config.lifeguard) return;
    this.health = Math.max(0, Math.min(this.config.awarenessMax - 1, this.health + delta));
  }

  protected applyRumours(from: NodeId, rumours: readonly Rumour[]): void {
    let seen: { origin: NodeId; seq: number }[] | undefined;
    for (const r of rumours) {
      if (r.kind !== 'event') {
        this.applyMembership(from, r);
      } else if (this.receiveEvent(r.event) === 'known') {
        seen ??= [];
        if (seen.length < 255) seen.push({ origin: r.event.origin, seq: r.event.seq });
      }
    }
    if (seen !== undefined) this.out.send(from, { type: 'seen', events: seen });
  }

  protected applyMembership(from: NodeId, r: Exclude<Rumour, { kind: 'event' }>): void {
    switch (r.kind) {
      case 'alive':
        this.applyAlive(from, r.id, r.incarnation, r.tags);
        return;
      case 'suspect':
        // The accuser the rumour names, not the member that relayed it: each relay counted
        // as an independent confirmation would shrink one accuser's suspicion to the
        // shortest, which is what Lifeguard 4.2 keeps a single slow accuser from doing.
        this.applySuspect(r.from, r.id, r.incarnation);
        return;
      case 'dead':
        this.applyDead(r.from, r.id, r.incarnation);
        return;
      case 'leave':
        this.applyLeave(r.id, r.incarnation, r.ltime);
        return;
      default:
        unreachable(r, 'membership rumour');
    }
  }

  protected applyAlive(from: NodeId, id: NodeId, incarnation: number, tags: string): void {
    if (id === this.id) {
      if (incarnation > this.incarnation) this.refute(incarnation);
      return;
    }
    const m = this.members.get(id);
    if (m === undefined) {
      const r = this.reaped.get(id);
      if (r !== undefined && incarnation <= r.incarnation) {
        // The member itself speaks at an incarnation we buried (a partition longer than
        // the reap interval): tell it, so it refutes above it and is taken back.
        if (from === id) {
          const accusation = {
            kind: 'dead' as const,
            id,
            incarnation: r.incarnation,
            from: this.id,
          };
          this.out.send(id, { type: 'gossip', rumours: [accusation] });
        }
        return;
      }
      if (this.members.size >= this.config.membersMax) {
        this.drop('members-full');
        return;
      }
      this.addMember({ id, incarnation, status: 'alive', tags, changedAt: this.now, ltime: 0 });
      this.out.emit({ type: 'member', about: id, status: 'alive', incarnation });
      this.membershipQueue.put({ kind: 'alive', id, incarnation, tags });
      return;
    }
    if (incarnation > m.incarnation) {
      this.suspicions.delete(id);
      m.tags = tags;
      this.setMember(m, incarnation, 'alive');
      this.membershipQueue.put({ kind: 'alive', id, incarnation, tags });
      return;
    }
    if (isGone(m.status)) {
      // A stale alive for a member we hold dead or left: that news has not reached
      // everyone, or the member restarted below its old incarnation. Gossip the
      // accusation again, and tell the member itself so it can refute at once.
      const accusation = this.rumourFor(m);
      this.membershipQueue.put(accusation);
      if (from === id) this.out.send(id, { type: 'gossip', rumours: [accusation] });
    }
  }

  protected applySuspect(from: NodeId, id: NodeId, incarnation: number): void {
    if (id === this.id) {
      this.refute(incarnation);
      return;
    }
    const m = this.members.get(id);
    if (m === undefined || incarnation < m.incarnation) return;
    if (isGone(m.status) && incarnation === m.incarnation) return;
    if (m.status === 'suspect' && incarnation === m.incarnation) {
      // Lifeguard 4.2: an independent confirmation shortens the suspicion; pass it on.
      if (this.suspicions.get(id)?.confirm(from) === true) {
        this.membershipQueue.put({ kind: 'suspect', id, incarnation, from });
      }
      return;
    }
    this.setMember(m, incarnation, 'suspect');
    this.stats.suspicions++;
    const n = this.aliveCount;
    this.suspicions.set(id, new Suspicion(id, incarnation, from, this.now, this.config, n));
    this.membershipQueue.put({ kind: 'suspect', id, incarnation, from });
  }

  /** Back from idle (its timers stopped): every member still suspect gets a fresh suspicion. */
  protected rearmSuspicions(): void {
    for (const m of this.members.values()) {
      if (m.status !== 'suspect' || this.suspicions.has(m.id)) continue;
      const s = new Suspicion(m.id, m.incarnation, this.id, this.now, this.config, this.aliveCount);
      this.suspicions.set(m.id, s);
    }
  }

  protected applyDead(from: NodeId, id: NodeId, incarnation: number): void {
    if (id === this.id) {
      this.refute(incarnation);
      return;
    }
    const m = this.members.get(id);
    if (m === undefined || incarnation < m.incarnation) return;
    if (isGone(m.status)) {
      if (incarnation > m.incarnation) this.setMember(m, incarnation, m.status);
      return;
    }
    this.suspicions.delete(id);
    this.setMember(m, incarnation, 'dead');
    if (from === this.id) this.out.emit({ type: 'verdict', about: id, incarnation });
    this.membershipQueue.put({ kind: 'dead', id, incarnation, from });
    this.spreadSoon();
  }

  protected applyLeave(id: NodeId, incarnation: number, ltime: number): void {
    this.ltime = Math.max(this.ltime, ltime);
    if (id === this.id) {
      this.refute(incarnation);
      return;
    }
    const m = this.members.get(id);
    if (m === undefined || incarnation < m.incarnation) return;
    if (m.status === 'left' && (incarnation === m.incarnation || ltime <= m.ltime)) return;
    this.suspicions.delete(id);
    m.ltime = ltime;
    this.setMember(m, incarnation, 'left');
    this.membershipQueue.put({ kind: 'leave', id, incarnation, ltime });
  }

  protected mergeMembers(from: NodeId, records: readonly MemberRecord[]): void {
    for (const r of records) {
      switch (r.status) {
        case 'alive':
          this.applyAlive(from, r.id, r.incarnation, r.tags);
          break;
        case 'suspect':
          this.applyAlive(from, r.id, r.incarnation, r.tags);
          this.applySuspect(from, r.id, r.incarnation);
          break;
        case 'dead':
          // As memberlist does: a dead member in a peer's state is only suspect to us, so
          // it has the chance to refute; one we never knew is recorded dead outright.
          if (this.members.has(r.id) || r.id === this.id)
            this.applySuspect(from, r.id, r.incarnation);
          else this.addGone(r, 'dead');
          break;
        case 'left':
          if (this.members.has(r.id) || r.id === this.id) this.applyLeave(r.id, r.incarnation, 0);
          else this.addGone(r, 'left');
          break;
        default:
          unreachable(r.status, 'member status');
      }
    }
  }

  protected addGone(r: MemberRecord, status: 'dead' | 'left'): void {
    if (this.reaped.has(r.id)) return;
    if (this.members.size >= this.config.membersMax) {
      this.drop('members-full');
      return;
    }
    this.addMember({
      id: r.id,
      incarnation: r.incarnation,
      status,
      tags: r.tags,
      changedAt: this.now - this.config.gossipToTheDeadMs,
      ltime: 0,
    });
  }
}

/**
 * A member's share of the membership hash. Dead and left members add nothing: nodes forget
 * them at their own times (reaping, a joiner that never knew them), and a hash that counted
 * them would disagree, and start state exchanges, for as long as the records of the dead
 * differ. What the dead are is still compared: digest slices carry every member.
 */
function hashPart(id: NodeId, incarnation: number, gone: boolean): number {
  return gone ? 0 : memberHash(id, incarnation, false);
}

export function isGone(s: MemberStatus): boolean {
  return s === 'dead' || s === 'left';
}
