import { assert } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import { TOTEM_DEFAULTS, type TotemConfig } from './config.ts';
import { TotemNode, type TotemUnsafeTestingFaults } from './node.ts';
import {
  applyTotemPersist,
  EMPTY_TOTEM_DURABLE,
  type TotemDeliver,
  type TotemDurable,
  type TotemEvent,
  type TotemMsg,
  type TotemPersist,
  type TotemReply,
  type TotemRequest,
} from './types.ts';

/**
 * A tiny deterministic host for Totem unit tests (not the simulator): every message takes
 * `latencyMs`, ticks run at each core's deadline, batches are persisted at once. Tests can
 * crash nodes, drop messages by a filter and inspect deliveries, replies and persists.
 */
interface InFlight {
  readonly at: number;
  readonly order: number;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly msg: TotemMsg;
}

export class TestRing {
  readonly nodes = new Map<NodeId, TotemNode>();
  readonly disks = new Map<NodeId, TotemDurable>();
  readonly delivered = new Map<NodeId, TotemDeliver[]>();
  readonly replies: { node: NodeId; reply: TotemReply }[] = [];
  /** Observer events with the time and node, when `keepEvents` is set. */
  readonly events: { at: number; node: NodeId; event: TotemEvent }[] = [];
  keepEvents = false;
  /** Deliveries with their time, when `keepEvents` is set. */
  readonly deliveredAt: { at: number; node: NodeId; item: TotemDeliver }[] = [];
  /** When each node last delivered a regular configuration. */
  readonly formedAt = new Map<NodeId, number>();
  /** Every persist item, with the messages of the same batch (to check what waits for what). */
  readonly batches: { node: NodeId; persist: TotemPersist[]; msgs: TotemMsg[] }[] = [];
  now = 0;
  latencyMs = 1;
  /** Return false to lose a message. */
  filter: (from: NodeId, to: NodeId, msg: TotemMsg) => boolean = () => true;
  sent = 0;
  private flight: InFlight[] = [];
  private order = 0;

  constructor(
    readonly members: readonly NodeId[],
    readonly overrides: Partial<TotemConfig> = {},
    readonly faults: TotemUnsafeTestingFaults = {},
  ) {
    for (const id of members) this.start(id);
  }

  config(id: NodeId): TotemConfig {
    return { ...TOTEM_DEFAULTS, ...this.overrides, id, members: this.members };
  }

  start(id: NodeId): void {
    const disk = this.disks.get(id) ?? EMPTY_TOTEM_DURABLE;
    this.nodes.set(id, new TotemNode(this.config(id), disk, this.now, this.faults));
    this.delivered.set(id, []);
    this.pump(id);
  }

  crash(id: NodeId): void {
    this.nodes.delete(id);
    this.flight = this.flight.filter((f) => f.to !== id);
  }

  request(id: NodeId, req: TotemRequest): void {
    this.nodes.get(id)!.request(this.now, 1, req);
    this.pump(id);
  }

  /** Feeds `raw` to `to` as if from `from`, unchecked (for bad-input tests). */
  inject(from: NodeId, to: NodeId, raw: unknown): void {
    this.nodes.get(to)!.receive(this.now, from, raw as TotemMsg);
    this.pump(to);
  }

  private pump(id: NodeId): void {
    const node = this.nodes.get(id)!;
    for (let rd = node.ready(); rd !== undefined; rd = node.ready()) {
      let disk = this.disks.get(id) ?? EMPTY_TOTEM_DURABLE;
      for (const p of rd.persist) disk = applyTotemPersist(disk, p);
      this.disks.set(id, disk);
      const msgs = [...rd.early, ...rd.messages];
      if (rd.persist.length > 0) {
        this.batches.push({ node: id, persist: [...rd.persist], msgs: msgs.map((m) => m.msg) });
      }
      for (const m of msgs) {
        this.sent++;
        if (!this.filter(id, m.to, m.msg)) continue;
        const at = this.now + this.latencyMs;
        this.flight.push({ at, order: this.order++, from: id, to: m.to, msg: m.msg });
      }
      for (const r of [...rd.earlyReplies, ...rd.replies])
        this.replies.push({ node: id, reply: r.reply });
      this.delivered.get(id)!.push(...rd.deliver);
      if (this.keepEvents) {
        for (const event of rd.events) this.events.push({ at: this.now, node: id, event });
        for (const item of rd.deliver) this.deliveredAt.push({ at: this.now, node: id, item });
      }
      if (rd.deliver.some((d) => d.type === 'config' && d.kind === 'regular')) {
        this.formedAt.set(id, this.now);
      }
      node.advance();
    }
  }

  /** Runs until `until` (absolute ms), or at most `stepsMax` steps. */
  runUntil(until: number, stepsMax = 2_000_000): void {
    for (let steps = 0; steps < stepsMax; steps++) {
      let next = Number.POSITIVE_INFINITY;
      let who: NodeId | undefined;
      for (const [id, n] of this.nodes) {
        const d = n.deadline();
        if (d < next) {
          next = d;
          who = id;
        }
      }
      let fi = -1;
      for (let i = 0; i < this.flight.length; i++) {
        const f = this.flight[i]!;
        if (fi === -1 || f.at < this.flight[fi]!.at) fi = i;
      }
      if (fi >= 0 && this.flight[fi]!.at > next) fi = -1;
      const t = fi >= 0 ? this.flight[fi]!.at : next;
      if (t > until) {
        this.now = until;
        return;
      }
      this.now = Math.max(this.now, t);
      if (fi >= 0) {
        const [f] = this.flight.splice(fi, 1);
        const node = this.nodes.get(f!.to);
        if (node === undefined) continue;
        node.receive(this.now, f!.from, f!.msg);
        this.pump(f!.to);
      } else if (who !== undefined) {
        this.nodes.get(who)!.tick(this.now);
        this.pump(who);
      }
    }
    assert(false, `TestRing: more than ${stepsMax} steps before ${until}ms`);
  }

  messages(id: NodeId): string[] {
    return this.delivered
      .get(id)!
      .filter((d) => d.type === 'message')
      .map((d) => (d.type === 'message' ? `${d.origin.node}.${d.origin.n}` : ''));
  }

  configs(id: NodeId): string[] {
    return this.delivered
      .get(id)!
      .filter((d) => d.type === 'config')
      .map((d) => (d.type === 'config' ? `${d.kind} ${d.members.join(',')}` : ''));
  }
}
