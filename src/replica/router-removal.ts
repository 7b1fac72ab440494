import type { NodeId } from '../kernel/ids.ts';
import type { RemovalRules, RouterNotice } from './router-types.ts';

/**
 * The router's removal bookkeeping (router.ts fronts it): who was removed for good, telling
 * them so, and a learner's probes. Removal is for good (a committed tombstone, then a
 * committed configuration without the member), so everything here only ever grows.
 */

/** What removal needs of the router: its clock, its leader, and two outputs. */
export interface RemovalPort<R> {
  readonly id: NodeId;
  readonly replica: R;
  now(): number;
  leader(): NodeId;
  /** Sends a router message that depends on nothing unpersisted. */
  sendEarly(to: NodeId, msg: { type: 'removed' } | { type: 'probe' }): void;
  notice(notice: RouterNotice): void;
}

export interface RemovalSettings {
  readonly removalNoticeIntervalMs: number;
  readonly probeIntervalMs: number;
  readonly peers: readonly NodeId[];
}

export class Removals<R> {
  /** Members removed for good (committed tombstone and configuration). */
  private readonly removedPeers = new Set<NodeId>();
  /** Tombstoned members still in the committed configuration (a removal under way). */
  private readonly tombstoned = new Set<NodeId>();
  private readonly toldAt = new Map<NodeId, number>();
  private removedSelf = false;
  /** When the next probe check is due: -Infinity asks for a first tick to arm it. */
  private nextProbeAt = Number.NEGATIVE_INFINITY;
  private wasOrphaned = false;

  constructor(
    private readonly port: RemovalPort<R>,
    private readonly rules: RemovalRules<R>,
    private readonly settings: RemovalSettings,
  ) {
    for (const id of rules.tombstones(port.replica)) this.tombstoned.add(id);
    // Known at start: told (again) only when it speaks, so a restart sends nothing.
    this.settle(false);
  }

  /** Whether this node was removed from the cluster. */
  get removed(): boolean {
    return this.removedSelf;
  }

  members(): ReadonlySet<NodeId> {
    return this.removedPeers;
  }

  isRemoved(peer: NodeId): boolean {
    return this.removedPeers.has(peer);
  }

  probeDueAt(): number {
    return this.nextProbeAt;
  }

  /** Reads the tombstones a batch of deliveries carries (all of them after a snapshot). */
  afterDeliveries(deliver: readonly unknown[]): void {
    const snapshot = deliver.some((d) => (d as { kind?: unknown }).kind === 'snapshot');
    const ids = snapshot
      ? this.rules.tombstones(this.port.replica)
      : this.rules.tombstonesIn(deliver);
    for (const id of ids) if (!this.removedPeers.has(id)) this.tombstoned.add(id);
    this.settle(true);
  }

  /**
   * Moves every tombstoned member whose configuration without it is committed to the
   * removed set; `tell` tells each so (and the host to forget it) as it moves.
   */
  private settle(tell: boolean): void {
    if (this.tombstoned.size === 0) return;
    for (const id of [...this.tombstoned]) {
      if (!this.rules.goneFromConfig(this.port.replica, id)) continue;
      this.tombstoned.delete(id);
      if (id === this.port.id) {
        this.learnRemoved(this.port.id);
        continue;
      }
      this.removedPeers.add(id);
      // Only the leader that committed it tells the member at once: a node replaying its log
      // after a restart must not dial a member long gone (it is told when it speaks instead).
      const told = tell && this.port.leader() === this.port.id;
      if (told) this.tell(id);
      this.port.notice({ type: 'peerRemoved', id, told });
    }
  }

  /** Tells a removed peer so, at most once per `removalNoticeIntervalMs`. */
  tell(to: NodeId): void {
    const now = this.port.now();
    const last = this.toldAt.get(to);
    if (last !== undefined && now - last < this.settings.removalNoticeIntervalMs) return;
    this.toldAt.set(to, now);
    this.port.sendEarly(to, { type: 'removed' });
  }

  /**
   * A peer's word is enough: it is authenticated by the cluster secret, and says so only once
   * it has committed this node's tombstone and a configuration without it.
   */
  learnRemoved(toldBy: NodeId): void {
    if (this.removedSelf) return;
    this.removedSelf = true;
    this.port.notice({ type: 'removedFromCluster', toldBy });
  }

  /**
   * A learner that has had no leader for two checks in a row probes every peer it knows of
   * (its log may not even hold its own addition, if it stopped right after joining): if it
   * was removed while it was down, a peer answers so. A voter needs no probe: it campaigns.
   */
  maybeProbe(): void {
    const now = this.port.now();
    if (this.nextProbeAt === Number.NEGATIVE_INFINITY) {
      this.nextProbeAt = now + this.settings.probeIntervalMs;
      return;
    }
    if (now < this.nextProbeAt) return;
    this.nextProbeAt = now + this.settings.probeIntervalMs;
    const orphaned = !this.removedSelf && this.rules.orphaned(this.port.replica);
    const probe = orphaned && this.wasOrphaned;
    this.wasOrphaned = orphaned;
    if (!probe) return;
    const peers = new Set<NodeId>([...this.settings.peers, ...this.rules.peers(this.port.replica)]);
    for (const id of peers) if (id !== this.port.id) this.port.sendEarly(id, { type: 'probe' });
  }
}
