import type { NodeId } from '../../kernel/ids.ts';
import type { TotemNode } from '../../totem/node.ts';
import {
  type ConfigChange,
  type Delivered,
  type Origin,
  type RingId,
  ringCompare,
  ringKey,
  type TotemDeliver,
  type TotemDurable,
  type TotemEvent,
  type TotemTypes,
} from '../../totem/types.ts';
import type { ClusterView, Monitor } from '../protocol.ts';

/**
 * The Totem checks, run on every delivery and event (issue 15): within a configuration the
 * members' delivery sequences are prefixes of one another; no duplicate, no gap, FIFO per
 * sender; at a safe delivery every member of the configuration holds the message or is down;
 * a datagram is freed only once every member holds it; EVS (members installing the same two
 * consecutive regular configurations delivered the same messages between them, and the
 * transitional configuration is a subset of both); configuration ids only grow; at most one
 * live token per ring (token seqs accepted in a ring strictly grow); and, after healing, one
 * ring of every node within token + consensus + 1 s.
 */

/** Seqs received: a contiguous prefix and a sparse rest. */
class SeqSet {
  prefix = 0;
  private readonly above = new Set<number>();

  add(s: number): void {
    if (s <= this.prefix) return;
    this.above.add(s);
    while (this.above.delete(this.prefix + 1)) this.prefix++;
  }

  has(s: number): boolean {
    return s <= this.prefix || this.above.has(s);
  }
}

/** What one incarnation of a node has done, as seen from outside. */
class Track {
  regular: ConfigChange | undefined = undefined;
  trans: readonly NodeId[] | undefined = undefined;
  readonly joined = new Set<string>();
  readonly received = new Map<string, SeqSet>();
  readonly lastSeq = new Map<string, number>();
  readonly regularIndex = new Map<string, number>();
  readonly delivered = new Set<string>();
  readonly fifo = new Map<string, number>();
  between: string[] = [];

  receivedIn(ring: string): SeqSet {
    let s = this.received.get(ring);
    if (s === undefined) {
      s = new SeqSet();
      this.received.set(ring, s);
    }
    return s;
  }
}

export function originKey(o: Origin): string {
  return `${o.node}.${o.boot}.${o.n}`;
}

/** State shared by the monitor and the workload of one run. */
export class TotemRun {
  readonly tracks = new Map<NodeId, Track>();
  readonly incarnation = new Map<NodeId, number>();
  healedAt: number | undefined = undefined;
  /** When a ring of every node first formed after healing. */
  formedAt: number | undefined = undefined;
  /** The ring of every node right now (after healing), if there is one. */
  formedRing: string | undefined = undefined;
  /** Set when the monitor is made (after the workload, before the run starts). */
  view: ClusterView<TotemTypes, TotemDurable> | undefined = undefined;

  constructor(
    readonly members: readonly NodeId[],
    /** token + consensus + 1 s, the bound on re-forming after heal. */
    readonly formBoundMs: number,
  ) {
    for (const m of members) {
      this.tracks.set(m, new Track());
      this.incarnation.set(m, 0);
    }
  }

  track(node: NodeId): Track {
    return this.tracks.get(node)!;
  }

  isUp(node: NodeId): boolean {
    return this.view?.isUp(node) ?? true;
  }

  incarnationOf(node: NodeId): number {
    return this.incarnation.get(node) ?? 0;
  }

  crashed(node: NodeId): void {
    this.tracks.set(node, new Track());
    this.incarnation.set(node, (this.incarnation.get(node) ?? 0) + 1);
  }

  /** Whether every node's current incarnation delivered the message. */
  deliveredEverywhere(key: string): boolean {
    return this.members.every((m) => this.track(m).delivered.has(key));
  }
}

function sameList(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function subset(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.every((x) => b.includes(x));
}

export class TotemMonitor implements Monitor<TotemTypes, TotemDurable> {
  /** Per ring, per seq: the messages that datagram completes. */
  private readonly assigned = new Map<string, Map<number, string[]>>();
  /** Per ring: the regular-configuration delivery sequence as far as anyone got. */
  private readonly canonical = new Map<string, string[]>();
  private readonly ringMembers = new Map<string, readonly NodeId[]>();
  private readonly evs = new Map<string, string>();
  private readonly lastConfig = new Map<NodeId, RingId>();
  private readonly tokenSeqs = new Map<string, number>();

  constructor(
    private readonly view: ClusterView<TotemTypes, TotemDurable>,
    private readonly run: TotemRun,
  ) {
    run.view = view;
  }

  onCrash(node: NodeId): void {
    this.run.crashed(node);
  }

  onEvent(node: NodeId, ev: TotemEvent, time: number): string | undefined {
    const t = this.run.track(node);
    switch (ev.type) {
      case 'received':
        t.receivedIn(ringKey(ev.ring)).add(ev.seq);
        return undefined;
      case 'assigned': {
        const r = ringKey(ev.ring);
        let byRing = this.assigned.get(r);
        if (byRing === undefined) {
          byRing = new Map();
          this.assigned.set(r, byRing);
        }
        if (byRing.has(ev.seq))
          return `two datagrams with seq ${ev.seq} in ring ${r} (node ${node})`;
        byRing.set(ev.seq, ev.completes.map(originKey));
        return undefined;
      }
      case 'token': {
        const r = ringKey(ev.ring);
        const last = this.tokenSeqs.get(r);
        if (last !== undefined && ev.tokenSeq <= last) {
          return `two live tokens in ring ${r}: node ${node} accepted token seq ${ev.tokenSeq} after ${last} at ${time.toFixed(3)}ms`;
        }
        this.tokenSeqs.set(r, ev.tokenSeq);
        return undefined;
      }
      case 'state':
        if (ev.state !== 'gather') t.joined.add(ringKey(ev.ring));
        return undefined;
      case 'freed':
        return this.checkFreed(node, ev.ring, ev.upTo);
      default:
        return undefined;
    }
  }

  private checkFreed(node: NodeId, ring: RingId, upTo: number): string | undefined {
    const r = ringKey(ring);
    for (const m of this.ringMembers.get(r) ?? []) {
      const tm = this.run.track(m);
      if (!this.view.isUp(m) || !tm.joined.has(r)) continue;
      const got = tm.receivedIn(r);
      if (got.prefix >= upTo) continue;
      for (let s = got.prefix + 1; s <= upTo; s++) {
        if (!got.has(s)) return `node ${node} freed ${r}:${upTo} while member ${m} lacks seq ${s}`;
      }
    }
    return undefined;
  }

  onDeliver(node: NodeId, item: TotemDeliver, time: number): string | undefined {
    const where = `node ${node} at ${time.toFixed(3)}ms`;
    return item.type === 'config'
      ? this.onConfig(node, item, where)
      : this.onMessage(node, item, where);
  }

  private onConfig(node: NodeId, c: ConfigChange, where: string): string | undefined {
    const t = this.run.track(node);
    const r = ringKey(c.ring);
    if (!c.members.includes(node)) return `${where}: configuration ${r} without itself`;
    if (c.kind === 'transitional') {
      if (t.regular === undefined || ringKey(t.regular.ring) !== r || t.trans !== undefined) {
        return `${where}: transitional configuration of ${r}, not its current regular one`;
      }
      if (!subset(c.members, t.regular.members)) {
        return `${where}: transitional configuration ${c.members} not within regular ${t.regular.members}`;
      }
      t.trans = c.members;
      return undefined;
    }
    const known = this.ringMembers.get(r);
    if (known !== undefined && !sameList(known, c.members)) {
      return `${where}: ring ${r} installed with members ${c.members}, elsewhere ${known}`;
    }
    this.ringMembers.set(r, c.members);
    const last = this.lastConfig.get(node);
    if (last !== undefined && ringCompare(c.ring, last) <= 0) {
      return `${where}: configuration ${r} after ${ringKey(last)} (ids must grow)`;
    }
    this.lastConfig.set(node, c.ring);
    if (t.regular !== undefined) {
      if (t.trans !== undefined && !subset(t.trans, c.members)) {
        return `${where}: transitional ${t.trans} not within the next regular ${c.members}`;
      }
      const pair = `${ringKey(t.regular.ring)}->${r}`;
      const set = [...t.between].sort().join(' ');
      const seen = this.evs.get(pair);
      if (seen === undefined) this.evs.set(pair, set);
      else if (seen !== set) {
        return `${where}: EVS broken between ${pair}: delivered {${set}}, another member {${seen}}`;
      }
    }
    t.regular = c;
    t.trans = undefined;
    t.between = [];
    return undefined;
  }

  private onMessage(node: NodeId, d: Delivered, where: string): string | undefined {
    const t = this.run.track(node);
    const key = originKey(d.origin);
    const r = ringKey(d.ring);
    if (t.delivered.has(key)) return `${where}: message ${key} delivered twice`;
    const sender = `${d.origin.node}.${d.origin.boot}`;
    const prev = t.fifo.get(sender) ?? 0;
    if (d.origin.n <= prev) return `${where}: ${key} after ${sender}.${prev} (FIFO per sender)`;
    if (t.regular === undefined || ringKey(t.regular.ring) !== r) {
      return `${where}: message of ring ${r} delivered outside its configuration`;
    }
    if ((d.in === 'transitional') !== (t.trans !== undefined)) {
      return `${where}: message ${key} marked ${d.in} in the wrong configuration`;
    }
    const lastSeq = t.lastSeq.get(r) ?? 0;
    if (d.seq < lastSeq) return `${where}: seq ${d.seq} after ${lastSeq} in ring ${r}`;
    if (d.in === 'regular') {
      const gap = this.skipped(t, r, lastSeq, d.seq);
      if (gap !== undefined) return `${where}: gap: delivered ${r}:${d.seq} without ${gap}`;
      const v = this.checkPrefix(t, r, `${d.seq}/${key}`, where);
      if (v !== undefined) return v;
    }
    if (d.mode === 'safe') {
      const members = d.in === 'regular' ? t.regular.members : (t.trans ?? []);
      for (const m of members) {
        const tm = this.run.track(m);
        if (m === node || !this.view.isUp(m) || !tm.joined.has(r)) continue;
        if (!tm.receivedIn(r).has(d.seq)) {
          return `${where}: safe ${key} (${r}:${d.seq}) delivered ${d.in} while member ${m} lacks it`;
        }
      }
    }
    t.lastSeq.set(r, d.seq);
    t.delivered.add(key);
    t.fifo.set(sender, d.origin.n);
    t.between.push(key);
    return undefined;
  }

  /** A message completed by a datagram in (from, to) this node has not delivered, if any. */
  private skipped(t: Track, r: string, from: number, to: number): string | undefined {
    const byRing = this.assigned.get(r);
    if (byRing === undefined) return undefined;
    for (let s = from + 1; s < to; s++) {
      for (const k of byRing.get(s) ?? []) if (!t.delivered.has(k)) return `${r}:${s} (${k})`;
    }
    return undefined;
  }

  private checkPrefix(t: Track, r: string, key: string, where: string): string | undefined {
    let seq = this.canonical.get(r);
    if (seq === undefined) {
      seq = [];
      this.canonical.set(r, seq);
    }
    const i = t.regularIndex.get(r) ?? 0;
    if (i < seq.length && seq[i] !== key) {
      return `${where}: ring ${r} position ${i}: delivered ${key}, another member ${seq[i]} (prefix)`;
    }
    if (i === seq.length) seq.push(key);
    t.regularIndex.set(r, i + 1);
    return undefined;
  }

  afterStep(view: ClusterView<TotemTypes, TotemDurable>): string | undefined {
    const run = this.run;
    if (run.healedAt === undefined) return undefined;
    run.formedRing = this.oneRing(view);
    if (run.formedRing !== undefined) {
      run.formedAt ??= view.now();
      return undefined;
    }
    if (run.formedAt === undefined && view.now() > run.healedAt + run.formBoundMs) {
      return `liveness: no ring of all ${run.members.length} nodes ${run.formBoundMs}ms after healing (${this.describe(view)})`;
    }
    return undefined;
  }

  /** The ring every node is operational on, if there is one. */
  private oneRing(view: ClusterView<TotemTypes, TotemDurable>): string | undefined {
    let ring: string | undefined;
    for (const m of this.run.members) {
      const core = view.core(m) as TotemNode | undefined;
      if (core === undefined || view.isPaused(m)) return undefined;
      const s = core.status();
      if (s.state !== 'operational' || s.members.length !== this.run.members.length) {
        return undefined;
      }
      const k = ringKey(s.ring);
      if (ring !== undefined && k !== ring) return undefined;
      ring = k;
    }
    return ring;
  }

  describe(view: ClusterView<TotemTypes, TotemDurable>): string {
    return this.run.members
      .map((m) => {
        const core = view.core(m) as TotemNode | undefined;
        if (core === undefined) return `${m}: down`;
        const s = core.status();
        return `${m}: ${s.state} ${ringKey(s.ring)} [${s.members.join(',')}]`;
      })
      .join('; ');
  }
}
