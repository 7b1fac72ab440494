import { assert, unreachable } from '../kernel/assert.ts';
import type { Core, Ready } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import { handleCommit } from './commit.ts';
import type { TotemConfig } from './config.ts';
import { NodeCtx, type TotemUnsafeTestingFaults } from './context.ts';
import { beginGather, consensusExpired, handleJoin, sendJoin } from './gather.ts';
import {
  handleMcast,
  handleProbe,
  handleRelease,
  handleToken,
  maybeRetransmit,
  probeForeignRings,
  publish,
  releaseHeld,
} from './operational.ts';
import {
  type DropReason,
  NO_RING,
  ringCompare,
  ringEquals,
  type TotemDurable,
  type TotemMsg,
  type TotemRequest,
  type TotemStatus,
  type TotemTypes,
} from './types.ts';
import { checkMessage } from './wire.ts';

export type { TotemUnsafeTestingFaults } from './context.ts';

/**
 * A Totem single-ring node (Amir et al., "The Totem single-ring ordering and membership
 * protocol", ACM TOCS 1995), as a pure core: the token orders datagrams, confirms receipt
 * and carries flow control; a lost token or a join starts the membership protocol
 * (Gather, Commit, Recovery) that forms the next ring and delivers configuration changes
 * in the stream (extended virtual synchrony).
 */
export class TotemNode implements Core<TotemTypes> {
  readonly id: NodeId;
  private readonly n: NodeCtx;

  constructor(
    config: TotemConfig,
    durable: TotemDurable,
    now: number,
    faults: TotemUnsafeTestingFaults = {},
  ) {
    this.n = new NodeCtx(config, durable, faults);
    this.id = config.id;
    beginGather(this.n, now, undefined, true);
    this.invariants();
  }

  /** Inputs dropped, per reason. */
  get drops(): ReadonlyMap<DropReason, number> {
    return this.n.drops;
  }

  // --- Core contract ---------------------------------------------------------------------

  tick(now: number): void {
    if (this.n.state === 'gather') {
      if (now >= this.n.consensusAt) consensusExpired(this.n, now);
      else if (now >= this.n.joinAt) sendJoin(this.n, now);
    } else if (now >= this.n.tokenAt) {
      beginGather(this.n, now);
    } else {
      maybeRetransmit(this.n, now);
      if (now >= this.n.holdAt) releaseHeld(this.n, now);
      if (now >= this.n.mergeAt) probeForeignRings(this.n, now);
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
        publish(this.n, now, client, req);
        break;
      case 'status':
        this.n.out.reply(client, { type: 'status', status: this.status() });
        break;
      default:
        unreachable(req, 'request');
    }
    this.invariants();
  }

  deadline(): number {
    if (this.n.state === 'gather') return Math.min(this.n.joinAt, this.n.consensusAt);
    const ring = this.n.activeRing();
    const retransmit =
      ring?.forwarded !== undefined && !ring.forwarded.evidence
        ? ring.forwarded.retransmitAt
        : Number.POSITIVE_INFINITY;
    return Math.min(this.n.tokenAt, this.n.holdAt, this.n.mergeAt, retransmit);
  }

  ready(): Ready<TotemTypes> | undefined {
    return this.n.out.ready();
  }

  advance(): void {
    this.n.out.advance();
  }

  // --- observers -------------------------------------------------------------------------

  status(): TotemStatus {
    const ring = this.n.activeRing() ?? this.n.regular;
    return {
      state: this.n.state,
      ring: ring?.id ?? NO_RING,
      members: ring?.members ?? [],
      aru: ring?.store.aru ?? 0,
      highSeq: ring?.store.highSeq ?? 0,
      delivered: ring?.store.delivered ?? 0,
      queued: this.n.queue.depth,
    };
  }

  /** Whether this node holds the token now (kept back while idle, or a singleton's). */
  holdsToken(): boolean {
    return this.n.held !== undefined;
  }

  // --- input dispatch --------------------------------------------------------------------

  private handle(now: number, from: NodeId, raw: unknown): void {
    if (!this.n.config.members.includes(from) || from === this.id) {
      this.n.drop('unknown-sender');
      return;
    }
    const checked = checkMessage(raw, this.n.limits);
    if (!checked.ok) {
      this.n.drop(checked.reason);
      return;
    }
    const msg = checked.msg;
    switch (msg.type) {
      case 'mcast':
        handleMcast(this.n, now, msg);
        return;
      case 'token':
        handleToken(this.n, now, from, msg);
        return;
      case 'ack': {
        const fwd = this.n.activeRing()?.forwarded;
        const ring = this.n.activeRing();
        if (ring !== undefined && ringEquals(ring.id, msg.ring) && fwd?.tokenSeq === msg.tokenSeq) {
          fwd.evidence = true;
        } else this.n.drop('not-expected');
        return;
      }
      case 'join':
        handleJoin(this.n, now, from, msg);
        return;
      case 'commit':
        handleCommit(this.n, now, msg);
        return;
      case 'probe':
        handleProbe(this.n, now, from, msg);
        return;
      case 'release':
        handleRelease(this.n, now, from, msg);
        return;
      default:
        unreachable(msg, 'message');
    }
  }

  // --- clients ---------------------------------------------------------------------------

  // --- datagrams -------------------------------------------------------------------------

  // --- the token -------------------------------------------------------------------------

  // --- delivery --------------------------------------------------------------------------

  // --- membership: Gather ----------------------------------------------------------------

  // --- membership: Commit ----------------------------------------------------------------

  // --- membership: Recovery --------------------------------------------------------------

  // --- merge detection -------------------------------------------------------------------

  // --- invariants ------------------------------------------------------------------------

  /** Asserted at the end of every input. */
  private invariants(): void {
    const reg = this.n.regular;
    const form = this.n.forming;
    switch (this.n.state) {
      case 'operational':
        assert(
          reg !== undefined && form === undefined,
          'operational: a regular ring, none forming',
        );
        break;
      case 'commit':
      case 'recovery':
        assert(form !== undefined, `${this.n.state}: a ring is forming`);
        break;
      case 'gather':
        assert(form === undefined && this.n.procs.has(this.id), 'gather: we are a process');
        assert(this.n.joinAt < Number.POSITIVE_INFINITY, 'gather: a join is scheduled');
        break;
      default:
        unreachable(this.n.state, 'state');
    }
    assert(!this.n.failed.has(this.id), 'we never count ourselves failed');
    for (const ring of [reg, form]) {
      if (ring === undefined) continue;
      const s = ring.store;
      assert(ring.members.includes(this.id), 'we are on our rings');
      assert(s.freed <= s.delivered && s.freed <= s.aru, 'freed only what we delivered and hold');
      assert(s.aru <= s.highSeq, 'aru is at most the highest seq');
      assert(ring.safeUpTo <= Math.max(s.highSeq, ring.prevAruIn), 'safe only what exists');
      assert(
        ringCompare(ring.id, NO_RING) > 0 && ring.id.seq <= this.n.ringSeqMax,
        'ring seq persisted',
      );
      if (!this.n.faults.deliverAcrossGap && this.n.state === 'operational' && ring === reg) {
        assert(s.delivered <= s.aru, 'delivered only contiguous datagrams');
      }
    }
    assert(this.n.queue.depth <= this.n.config.sendQueueMessagesMax, 'send queue bounded');
    assert(this.n.awaiting.size <= this.n.config.sendQueueMessagesMax, 'awaiting bounded');
    assert(this.n.assembler.inProgress <= this.n.config.members.length, 'one partial per origin');
    assert(this.n.recoveryQueue.length <= this.n.config.storeSpanMax * 2, 'recovery queue bounded');
  }
}
