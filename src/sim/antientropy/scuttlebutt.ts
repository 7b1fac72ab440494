import type { Json } from '../../check/history.ts';
import {
  applyScuttlePersist,
  type Delta,
  initialScuttleDurable,
  SCUTTLE_DEFAULTS,
  type ScuttleConfig,
  type ScuttleDurable,
  type ScuttleMsg,
  ScuttleNode,
  type ScuttleRequest,
  type ScuttleTypes,
} from '../../gossip/antientropy/scuttlebutt.ts';
import type { Core, Ready } from '../../kernel/core.ts';
import type { Outgoing } from '../../kernel/envelope.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { ClusterView, Monitor, ProtocolFault, SimProtocol } from '../protocol.ts';
import { WriteWorkload, type WriteWorkloadSettings } from './workload.ts';

/** Deliberately broken variants, each of which the sweep must catch. */
export interface ScuttleBrokenVariant {
  /** Drop the lowest delta of an owner from a message that carries two or more of its. */
  readonly gapInDeltas?: boolean;
  /** A restart does not read the disk back: versions start again from zero. */
  readonly reuseVersionAfterRestart?: boolean;
}

export interface ScuttleSimSettings {
  readonly name: string;
  readonly description: string;
  readonly config?: Partial<Omit<ScuttleConfig, 'id' | 'members'>>;
  readonly broken?: ScuttleBrokenVariant;
  readonly workload?: Partial<WriteWorkloadSettings>;
  /** Keys each owner writes (a small set, so keys are overwritten and deltas cut). */
  readonly keysPerOwner?: number;
}

/**
 * 5 nodes gossip once a second with an mtu of 8 deltas (so the cut matters), each owner
 * writing 6 keys. Bound after healing: 30 s, that is 30 gossip rounds. Why it suffices:
 * writes stop at healing, so at most `ops` deltas are outstanding; each round every node
 * starts one three-way exchange, and an exchange moves up to 8 deltas each way, so a
 * node missing d deltas of which a peer holds them catches up in d/8 exchanges with it;
 * with 5 nodes a delta reaches everyone by push-pull in about 3 rounds and the 100 writes
 * of a run (only some accepted under flow control) leave at most 6 keys x 5 owners = 30
 * live entries, 4 mtus. The sweep measures the real figure (it is far below 30 s).
 */
export const defaultScuttleWorkload: WriteWorkloadSettings = {
  writeWindowMs: 15_000,
  safetyMs: 20_000,
  convergeMs: 30_000,
  convergeCheckMs: 500,
};

/** Who is in the live view (the membership layer's output, modelled as an oracle). */
export class Membership {
  readonly departed = new Set<NodeId>();
  liveFor(self: NodeId, members: readonly NodeId[]): NodeId[] {
    if (this.departed.has(self)) return [self];
    return members.filter((m) => !this.departed.has(m));
  }
}

interface OwnWrite {
  readonly version: number;
  readonly key: string;
  readonly value: string;
}

const text = new TextDecoder();

/**
 * What the simulated cluster did, as the checks need it: each owner's durable writes in
 * version order (committed when the batch holding them is durable, so a torn write that
 * never left is not counted), and every message's size against the mtu.
 */
export class ScuttleLedger {
  violation: string | undefined;
  readonly history = new Map<NodeId, OwnWrite[]>();
  messages = 0;
  deltas = 0;

  constructor(readonly mtuDeltas: number) {}

  commitOwn(owner: NodeId, d: Delta): void {
    const list = this.history.get(owner) ?? [];
    this.history.set(owner, list);
    const last = list[list.length - 1];
    const value = text.decode(d.value);
    if (last !== undefined && d.version <= last.version) {
      const same = list.find((w) => w.version === d.version);
      const what = same === undefined ? '' : ` (already ${same.key}=${same.value})`;
      this.violation ??= `version reused: n${owner} wrote ${d.key}=${value} at version ${d.version} after version ${last.version}${what}`;
      return;
    }
    list.push({ version: d.version, key: d.key, value });
  }

  sent(from: NodeId, o: Outgoing<ScuttleMsg>): void {
    this.messages++;
    if (o.msg.type !== 'deltas') return;
    this.deltas += o.msg.deltas.length;
    if (o.msg.deltas.length > this.mtuDeltas) {
      this.violation ??= `message over the mtu: n${from} sent n${o.to} ${o.msg.deltas.length} deltas > mtuDeltas ${this.mtuDeltas}`;
    }
  }
}

/** A Scuttlebutt core whose output the ledger sees; the broken variants bend it here. */
export class ObservedScuttle implements Core<ScuttleTypes> {
  readonly id: NodeId;
  private pending: Ready<ScuttleTypes> | undefined;
  private liveKey = '';

  constructor(
    readonly node: ScuttleNode,
    private readonly members: readonly NodeId[],
    private readonly membership: Membership,
    private readonly ledger: ScuttleLedger,
    private readonly broken: ScuttleBrokenVariant,
  ) {
    this.id = node.id;
    this.syncLive();
  }

  private syncLive(): void {
    const live = this.membership.liveFor(this.id, this.members);
    const key = live.join(',');
    if (key !== this.liveKey) {
      this.liveKey = key;
      this.node.setLive(live);
    }
  }

  tick(now: number): void {
    this.syncLive();
    this.node.tick(now);
  }
  receive(now: number, from: NodeId, msg: ScuttleMsg): void {
    this.node.receive(now, from, msg);
  }
  request(now: number, client: ClientId, req: ScuttleRequest): void {
    this.node.request(now, client, req);
  }
  deadline(): number {
    return this.node.deadline();
  }
  ready(): Ready<ScuttleTypes> | undefined {
    if (this.pending !== undefined) return this.pending;
    const rd = this.node.ready();
    if (rd === undefined) return undefined;
    const messages = this.broken.gapInDeltas ? rd.messages.map(withGap) : rd.messages;
    for (const m of rd.early) this.ledger.sent(this.id, m);
    for (const m of messages) this.ledger.sent(this.id, m);
    this.pending = messages === rd.messages ? rd : { ...rd, messages };
    return this.pending;
  }
  advance(): void {
    const rd = this.pending;
    this.pending = undefined;
    if (rd !== undefined) {
      for (const p of rd.persist) if (p.type === 'own') this.ledger.commitOwn(this.id, p.delta);
    }
    this.node.advance();
  }
}

/** The gap variant: leave out the first delta of the first owner with two or more. */
function withGap(o: Outgoing<ScuttleMsg>): Outgoing<ScuttleMsg> {
  if (o.msg.type !== 'deltas') return o;
  const count = new Map<NodeId, number>();
  for (const d of o.msg.deltas) count.set(d.owner, (count.get(d.owner) ?? 0) + 1);
  const owner = [...count].find(([, n]) => n >= 2)?.[0];
  if (owner === undefined) return o;
  const skip = o.msg.deltas.findIndex((d) => d.owner === owner);
  const deltas = o.msg.deltas.filter((_, i) => i !== skip);
  return { to: o.to, msg: { ...o.msg, deltas } };
}

export type ScuttleView = ClusterView<ScuttleTypes, ScuttleDurable>;

export function scuttleNodeOf(view: ScuttleView, id: NodeId): ScuttleNode | undefined {
  const core = view.core(id);
  return core instanceof ObservedScuttle ? core.node : undefined;
}

/**
 * The Scuttlebutt checks, after every step of a node:
 * - versions never go back: an owner's writes have strictly growing versions across
 *   restarts (ledger), and a restarted owner's digest of itself is at least the last
 *   version it wrote durably; a holder's digest of an owner never shrinks while it is up;
 * - no gaps: if a holder's digest of owner o is v, it holds every key o wrote at or below v
 *   at at least o's latest version of that key at or below v, unless o has overwritten the
 *   key above v since (the paper's rule: a digest covers the owner's current entries);
 * - every message fits the mtu (ledger).
 * After healing: every live replica's digest is every owner's own newest version.
 */
export class ScuttleMonitor implements Monitor<ScuttleTypes, ScuttleDurable> {
  /** holder -> owner -> digest version last checked. */
  private readonly checked = new Map<NodeId, Map<NodeId, number>>();

  constructor(
    readonly view: ScuttleView,
    private readonly ledger: ScuttleLedger,
    private readonly membership: Membership,
  ) {}

  onCrash(node: NodeId): void {
    this.checked.delete(node);
  }

  afterStep(view: ScuttleView, id: NodeId): string | undefined {
    if (this.ledger.violation !== undefined) return this.ledger.violation;
    const node = scuttleNodeOf(view, id);
    if (node === undefined) return undefined;
    let mine = this.checked.get(id);
    if (mine === undefined) {
      mine = new Map();
      this.checked.set(id, mine);
      const own = this.ledger.history.get(id);
      const last = own?.[own.length - 1]?.version ?? 0;
      const self = node.digest().find(([o]) => o === id)?.[1] ?? 0;
      if (self < last) {
        return `version went back: n${id} (re)started at version ${self}, below the version ${last} it wrote durably`;
      }
    }
    for (const [owner, v] of node.digest()) {
      const before = mine.get(owner) ?? 0;
      if (v < before) return `digest went back: n${id} held n${owner} up to ${before}, now ${v}`;
      if (v === before || owner === id) {
        mine.set(owner, v);
        continue;
      }
      const gap = this.gap(node, owner, v);
      if (gap !== undefined) return gap;
      mine.set(owner, v);
    }
    return undefined;
  }

  private gap(node: ScuttleNode, owner: NodeId, upTo: number): string | undefined {
    const latest = new Map<string, number>();
    const superseded = new Set<string>();
    for (const w of this.ledger.history.get(owner) ?? []) {
      if (w.version > upTo) superseded.add(w.key);
      else latest.set(w.key, w.version);
    }
    for (const [key, version] of latest) {
      const held = node.get(owner, key)?.version ?? 0;
      // A write the owner has since overwritten above `upTo` is no longer held anywhere
      // up to date, so it need not arrive: its replacement will, after `upTo`.
      if (held < version && !superseded.has(key)) {
        return `gap: n${node.id}'s digest holds n${owner} up to ${upTo}, but it has ${key} at ${held || 'nothing'}, not n${owner}'s version ${version}`;
      }
    }
    return undefined;
  }

  /** Live replicas: up and not churned out. */
  live(view: ScuttleView): NodeId[] {
    return view.members.filter(
      (id) => scuttleNodeOf(view, id) !== undefined && !this.membership.departed.has(id),
    );
  }

  atEnd(view: ScuttleView): string | undefined {
    const live = this.live(view);
    for (const id of live) {
      const digest = new Map(scuttleNodeOf(view, id)!.digest());
      for (const owner of live) {
        const want = new Map(scuttleNodeOf(view, owner)!.digest()).get(owner) ?? 0;
        const has = digest.get(owner) ?? 0;
        if (has !== want) {
          return `not converged: n${id} holds n${owner} up to ${has}, n${owner} is at ${want}`;
        }
      }
    }
    return undefined;
  }
}

/** Churn: a node leaves every live view (and stops gossiping), or one that left comes back. */
function churnFault(membership: () => Membership): ProtocolFault<ScuttleTypes, ScuttleDurable> {
  return {
    name: 'churn',
    apply(control, rng): Json | undefined {
      const m = membership();
      const members = control.view.members;
      if (m.departed.size > 0 && (rng.chance(0.5) || m.departed.size >= (members.length - 1) / 2)) {
        const node = rng.pick([...m.departed]);
        m.departed.delete(node);
        return { rejoin: node };
      }
      const stay = members.filter((id) => !m.departed.has(id));
      if (stay.length <= Math.max(2, members.length / 2)) return undefined;
      const node = rng.pick(stay);
      m.departed.add(node);
      return { leave: node };
    },
  };
}

function describeMessage(msg: ScuttleMsg): Json {
  if (msg.type === 'digest') return { type: msg.type, owners: msg.digest.length };
  return {
    type: msg.type,
    deltas: msg.deltas.map((d) => `n${d.owner}:${d.key}@${d.version}`),
    cut: msg.cut,
    reply: msg.digest !== undefined,
  };
}

const encoder = new TextEncoder();

export function scuttleSimProtocol(settings: ScuttleSimSettings): SimProtocol<
  ScuttleTypes,
  ScuttleDurable
> & {
  lastMonitor(): ScuttleMonitor | undefined;
  lastLedger(): ScuttleLedger | undefined;
} {
  const base = { ...SCUTTLE_DEFAULTS, mtuDeltas: 8, ...settings.config };
  const workload = { ...defaultScuttleWorkload, ...settings.workload };
  const keys = settings.keysPerOwner ?? 6;
  const broken = settings.broken ?? {};
  let membership = new Membership();
  let ledger = new ScuttleLedger(base.mtuDeltas);
  let monitor: ScuttleMonitor | undefined;
  return {
    name: settings.name,
    description: settings.description,
    defaultNodes: 5,
    simDefaults: {
      safetyMsMax: workload.safetyMs * 3,
      livenessMs: workload.convergeMs + 5_000,
      ops: 100,
    },
    faults: [churnFault(() => membership)],

    createCore(init) {
      const config: ScuttleConfig = { ...base, id: init.id, members: init.members };
      const durable =
        broken.reuseVersionAfterRestart === true ? undefined : (init.durable ?? undefined);
      const node = new ScuttleNode(config, init.rng, durable);
      return new ObservedScuttle(node, init.members, membership, ledger, broken);
    },
    emptyDurable: () => initialScuttleDurable(),
    applyPersist: (d, item) => applyScuttlePersist(d, item),

    createMonitor(view) {
      membership = new Membership();
      ledger = new ScuttleLedger(base.mtuDeltas);
      monitor = new ScuttleMonitor(view, ledger, membership);
      return monitor;
    },

    createWorkload: (ctx) =>
      new WriteWorkload<ScuttleTypes>(
        ctx,
        workload,
        (rng, n) => ({ type: 'put', key: `k${rng.int(keys)}`, value: encoder.encode(`w${n}`) }),
        (reply) => (reply.type === 'refused' ? reply.refusal.type : reply.type),
        () => {
          const m = monitor;
          return m !== undefined && m.atEnd(m.view) === undefined;
        },
        () => membership.departed.clear(),
      ),
    describeMessage,
    lastMonitor: () => monitor,
    lastLedger: () => ledger,
  };
}

export const scuttlebuttSim = scuttleSimProtocol({
  name: 'scuttlebutt',
  description: 'Scuttlebutt store with flow control: no gaps, versions only grow, digests converge',
});

/** The broken variants, registered so the replay command they print runs through the CLI. */
export const scuttlebuttBrokenGap = scuttleSimProtocol({
  name: 'scuttlebutt-broken-gap',
  description: 'deliberately broken: a delta left out of a message (a gap)',
  broken: { gapInDeltas: true },
});

export const scuttlebuttBrokenReuse = scuttleSimProtocol({
  name: 'scuttlebutt-broken-reuse',
  description: 'deliberately broken: versions start again from zero after a restart',
  broken: { reuseVersionAfterRestart: true },
});
