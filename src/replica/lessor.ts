import { assert } from '../kernel/assert.ts';
import type { KvOp, KvResult } from '../kv/machine.ts';

/**
 * The lessor: who decides, on a clock, that a lease has expired. The state machine holds
 * leases as data (granted TTLs, attached keys) and has no clock; this pure bookkeeping runs
 * in the call router of the leader only (etcd's "primary lessor") with `now` handed in:
 *
 * - each lease's expiry is its last keep-alive plus its TTL; keep-alives are served by the
 *   leader and never written to the log;
 * - on becoming leader every lease's expiry restarts at now + its TTL (etcd's `Promote`),
 *   so a failover never expires a lease that was being kept alive: whoever kept it alive
 *   did so before this node won its election;
 * - an expired lease is revoked by proposing `leaseRevoke` through the log: the leader
 *   decides on its clock, every replica applies the revoke in the same place;
 * - a keep-alive of a lease that has expired here is refused as not found, even while its
 *   revoke is on its way (etcd waits for that revoke, then answers the same), so no client
 *   is told a lease lives that is about to go.
 *
 * Checkpoints of remaining TTL are not taken: a new leader restarts every lease at its full
 * TTL, which only ever keeps a lease longer, never shorter.
 */

/** The calls the leader's lessor answers (a keep-alive, a time-to-live), `asUser` or not. */
export function isLessorRead(op: KvOp): boolean {
  const inner = op.f === 'asUser' ? op.op : op;
  return inner.f === 'leaseKeepAlive' || inner.f === 'leaseTimeToLive';
}

/** A lease as the lessor needs it: its id and granted TTL in seconds. */
export type LeaseTtl = readonly [id: number, ttlSeconds: number];

/** What the lessor reads of the state machine's leases. */
export interface LeaseSource {
  /** Changes whenever the lease set does (KvStateMachine.leasesVersion). */
  readonly version: number;
  list(): Iterable<LeaseTtl>;
}

export interface LessorOptions {
  /** Revokes of expired leases in flight at once; the rest wait (etcd bounds its rate too). */
  readonly revokesInFlightMax: number;
  /** Pause before a revoke that did not apply is proposed again. */
  readonly revokeRetryMs: number;
  /** Deliberate bugs, for the simulator's broken variants only. */
  readonly unsafeTestingFaults?: LessorUnsafeTestingFaults;
}

export interface LessorUnsafeTestingFaults {
  /**
   * Every node counts each lease down from when it learned of it, and a new leader keeps
   * the deadlines it counted instead of restarting them: keep-alives the old leader served
   * never reached it, so it revokes leases that are being kept alive.
   */
  readonly keepDeadlinesOnPromote?: boolean;
}

export const defaultLessorOptions: LessorOptions = {
  revokesInFlightMax: 64,
  revokeRetryMs: 100,
};

interface Tracked {
  ttlMs: number;
  expiresAt: number;
  /** A revoke was proposed and its answer has not come back. */
  revoking: boolean;
  /** No revoke is proposed again before this (after one that did not apply). */
  retryAt: number;
}

/** What a keep-alive comes to: the TTL restarted, or the lease expired here. */
export type Renewal = { readonly ok: true; readonly ttlSeconds: number } | { readonly ok: false };

export class Lessor {
  private primary = false;
  private readonly leases = new Map<number, Tracked>();
  private seenVersion = Number.NaN;
  private revokesInFlight = 0;
  /** The earliest expiry or retry among leases not being revoked (recomputed lazily). */
  private nextDue = Number.POSITIVE_INFINITY;
  private dueStale = true;

  constructor(private readonly options: LessorOptions = defaultLessorOptions) {
    assert(
      Number.isSafeInteger(options.revokesInFlightMax) && options.revokesInFlightMax >= 1,
      `revokesInFlightMax must be an integer >= 1, got ${options.revokesInFlightMax}`,
    );
    assert(
      Number.isSafeInteger(options.revokeRetryMs) && options.revokeRetryMs >= 1,
      `revokeRetryMs must be an integer >= 1, got ${options.revokeRetryMs}`,
    );
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  /** Leases tracked (every lease of the machine while primary). */
  get size(): number {
    return this.leases.size;
  }

  /** This node became leader at `now`: every lease's countdown restarts at its full TTL. */
  promote(now: number, source: LeaseSource): void {
    assert(!this.primary, 'promoted twice');
    this.primary = true;
    if (this.faults.keepDeadlinesOnPromote !== true) this.leases.clear();
    this.revokesInFlight = 0;
    for (const t of this.leases.values()) t.revoking = false;
    this.seenVersion = Number.NaN;
    this.sync(now, source);
  }

  /** This node stopped leading: it decides nothing until promoted again. */
  demote(): void {
    this.primary = false;
    this.revokesInFlight = 0;
    if (this.faults.keepDeadlinesOnPromote !== true) this.leases.clear();
    else for (const t of this.leases.values()) t.revoking = false;
    this.seenVersion = Number.NaN;
    this.dueStale = true;
  }

  /**
   * Takes in the machine's lease set when it changed: a lease granted since starts its
   * countdown now, a lease revoked is forgotten. Followers track nothing (unless broken).
   */
  sync(now: number, source: LeaseSource): void {
    if (!this.primary && this.faults.keepDeadlinesOnPromote !== true) return;
    if (source.version === this.seenVersion) return;
    this.seenVersion = source.version;
    const live = new Set<number>();
    for (const [id, ttlSeconds] of source.list()) {
      live.add(id);
      const ttlMs = ttlSeconds * 1000;
      const t = this.leases.get(id);
      if (t === undefined) {
        this.leases.set(id, { ttlMs, expiresAt: now + ttlMs, revoking: false, retryAt: 0 });
      } else {
        t.ttlMs = ttlMs;
      }
    }
    for (const [id, t] of this.leases) {
      if (live.has(id)) continue;
      if (t.revoking) this.revokesInFlight--;
      this.leases.delete(id);
    }
    this.dueStale = true;
    this.invariants();
  }

  /** A keep-alive answered here at `now`, after the machine said the lease exists. */
  renew(now: number, id: number, ttlSeconds: number): Renewal {
    assert(this.primary, 'a keep-alive renewed off the leader');
    const t = this.leases.get(id);
    // Not tracked although the machine has it: the sync before the answer adds every lease.
    if (t === undefined) return { ok: false };
    if (t.revoking || t.expiresAt <= now) return { ok: false };
    // Only the lease due first can move the earliest due time.
    if (t.expiresAt <= this.nextDue) this.dueStale = true;
    t.ttlMs = ttlSeconds * 1000;
    t.expiresAt = Math.max(t.expiresAt, now + t.ttlMs);
    return { ok: true, ttlSeconds };
  }

  /**
   * A keep-alive or time-to-live answered by the replica, served here: on the leader a
   * keep-alive restarts the countdown (or is told the lease is gone, if it expired here) and
   * a time-to-live gets what is left; anywhere else undefined, so that the call goes to the
   * leader (a refusal as not-leader).
   */
  serve(now: number, leads: boolean, source: LeaseSource, result: KvResult): KvResult | undefined {
    if (result.f !== 'leaseKeepAlive' && result.f !== 'leaseTimeToLive') return result;
    if (!leads || !this.primary) return undefined;
    this.sync(now, source);
    const gone: KvResult = { f: 'error', code: 'leaseNotFound', lease: result.id };
    if (result.f === 'leaseKeepAlive') {
      return this.renew(now, result.id, result.ttl).ok ? result : gone;
    }
    const left = this.remainingMs(now, result.id) ?? 0;
    return left <= 0 ? gone : { ...result, remainingTtl: Math.ceil(left / 1000) };
  }

  /** Milliseconds left of lease `id` (0 once expired); undefined if not tracked. */
  remainingMs(now: number, id: number): number | undefined {
    const t = this.leases.get(id);
    if (t === undefined || !this.primary) return undefined;
    return t.revoking ? 0 : Math.max(0, t.expiresAt - now);
  }

  /** The leases to propose revokes for now (marked as being revoked), oldest expiry first. */
  takeExpired(now: number): number[] {
    if (!this.primary || this.due() > now) return [];
    const expired: [number, number][] = [];
    for (const [id, t] of this.leases) {
      if (!t.revoking && t.expiresAt <= now && t.retryAt <= now) expired.push([t.expiresAt, id]);
    }
    expired.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const room = this.options.revokesInFlightMax - this.revokesInFlight;
    const ids = expired.slice(0, Math.max(0, room)).map(([, id]) => id);
    for (const id of ids) this.leases.get(id)!.revoking = true;
    this.revokesInFlight += ids.length;
    this.dueStale = true;
    this.invariants();
    return ids;
  }

  /**
   * The answer to a revoke this lessor proposed came back: applied (the sync that follows
   * forgets the lease) or not (asked again after `revokeRetryMs` if the lease is still there).
   */
  revokeEnded(now: number, id: number): void {
    const t = this.leases.get(id);
    if (t === undefined || !t.revoking) return;
    t.revoking = false;
    this.revokesInFlight--;
    // Applied, the next sync forgets it; if not (or if the sync shows it still there), the
    // revoke is proposed again after a pause.
    t.retryAt = now + this.options.revokeRetryMs;
    this.dueStale = true;
    this.invariants();
  }

  /** When the lessor next has something to do (infinity: nothing, or not primary). */
  deadline(): number {
    return this.primary ? this.due() : Number.POSITIVE_INFINITY;
  }

  private due(): number {
    if (!this.dueStale) return this.nextDue;
    let due = Number.POSITIVE_INFINITY;
    if (this.revokesInFlight < this.options.revokesInFlightMax) {
      for (const t of this.leases.values()) {
        if (!t.revoking) due = Math.min(due, Math.max(t.expiresAt, t.retryAt));
      }
    }
    this.nextDue = due;
    this.dueStale = false;
    return due;
  }

  private get faults(): LessorUnsafeTestingFaults {
    return this.options.unsafeTestingFaults ?? {};
  }

  private invariants(): void {
    assert(
      this.revokesInFlight >= 0 && this.revokesInFlight <= this.options.revokesInFlightMax,
      `revokes in flight out of bounds: ${this.revokesInFlight}`,
    );
  }
}
