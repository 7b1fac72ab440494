import type { Json } from '../../check/history.ts';
import { compareHlc, type Hlc } from '../../gossip/antientropy/hlc.ts';
import type { Entry } from '../../gossip/antientropy/merkle.ts';
import { sameSummary } from '../../gossip/antientropy/merkle.ts';
import {
  applyMerklePersist,
  initialMerkleDurable,
  MERKLE_DEFAULTS,
  type MerkleConfig,
  type MerkleDurable,
  MerkleNode,
  type MerkleRequest,
  type MerkleTypes,
} from '../../gossip/antientropy/node.ts';
import { type MerkleMsg, messageBytes } from '../../gossip/antientropy/wire.ts';
import type { Core, Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { Rng } from '../../kernel/rng.ts';
import type { ClusterView, Monitor, SimProtocol } from '../protocol.ts';
import { WriteWorkload, type WriteWorkloadSettings } from './workload.ts';

/** Deliberately broken variants, each of which the sweep must catch. */
export interface MerkleBrokenVariant {
  /** Collect expired tombstones without waiting for any peer to have agreed. */
  readonly earlyTombstoneCollection?: boolean;
}

export interface MerkleSimSettings {
  readonly name: string;
  readonly description: string;
  readonly config?: Partial<Omit<MerkleConfig, 'id' | 'members'>>;
  readonly broken?: MerkleBrokenVariant;
  readonly workload?: Partial<WriteWorkloadSettings>;
  /** Keys all nodes write (shared, so writers conflict). */
  readonly keys?: number;
  /** Share of writes that are deletes. */
  readonly deleteShare?: number;
}

/**
 * Bound after healing: 30 s, 30 repair rounds. Every node starts one repair a second with
 * a random peer, a repair of d differing keys takes 4 message waves (root, children,
 * key lists, values), each a few ms here, so one round makes a pair equal; pairwise
 * exchanges spread the newest version of every key to all 5 replicas like push-pull
 * gossip, about log2(5) + ln(5) ~ 4 rounds. A tombstone still waiting to be collected
 * keeps the roots different only until every replica has collected it, which takes a
 * tombstone lifetime (2 s here) plus the rounds for every pair to see equal roots.
 */
export const defaultMerkleWorkload: WriteWorkloadSettings = {
  writeWindowMs: 15_000,
  safetyMs: 20_000,
  convergeMs: 30_000,
  convergeCheckMs: 500,
};

/** Small limits so chunking and deep descents happen with few keys. */
export const MERKLE_SIM_CONFIG = {
  ...MERKLE_DEFAULTS,
  keyBytesMax: 64,
  valueBytesMax: 256,
  leafKeysMax: 4,
  listKeysMax: 4,
  messageBytesMax: 1_024,
  tombstoneTtlMs: 2_000,
  clockBlockMs: 1_000,
} as const satisfies Omit<MerkleConfig, 'id' | 'members'>;

/** Issued versions (committed once durable) and message sizes, for the checks. */
export class MerkleLedger {
  violation: string | undefined;
  readonly lastIssued = new Map<NodeId, Hlc>();
  messages = 0;
  bytes = 0;
  bytesMaxSeen = 0;
  collected = 0;

  constructor(readonly messageBytesMax: number) {}

  issued(node: NodeId, version: Hlc): void {
    const last = this.lastIssued.get(node);
    if (last !== undefined && compareHlc(version, last) <= 0) {
      this.violation ??= `version went back: n${node} issued ${fmt(version)} after ${fmt(last)}`;
      return;
    }
    this.lastIssued.set(node, version);
  }

  sent(from: NodeId, to: NodeId, msg: MerkleMsg): void {
    const bytes = messageBytes(msg);
    this.messages++;
    this.bytes += bytes;
    this.bytesMaxSeen = Math.max(this.bytesMaxSeen, bytes);
    if (bytes > this.messageBytesMax) {
      this.violation ??= `message over the mtu: n${from} sent n${to} a ${msg.type} of ${bytes} B > messageBytesMax ${this.messageBytesMax} B`;
    }
  }
}

function fmt(v: Hlc): string {
  return `${v.wall}.${v.logical}@n${v.node}`;
}

/** A Merkle replica whose output the ledger sees; the broken variant bends it here. */
export class ObservedMerkle implements Core<MerkleTypes> {
  readonly id: NodeId;
  private pending: Ready<MerkleTypes> | undefined;

  constructor(
    readonly node: MerkleNode,
    private readonly members: readonly NodeId[],
    private readonly ledger: MerkleLedger,
    private readonly broken: MerkleBrokenVariant,
    private readonly rng: Rng,
  ) {
    this.id = node.id;
  }

  tick(now: number): void {
    if (this.broken.earlyTombstoneCollection !== true || now < this.node.deadline()) {
      this.node.tick(now);
      return;
    }
    // Alone in its view the rule has no peer to wait for; the repair it then skips is
    // started by hand so the variant differs from the real node only in what it collects.
    this.node.setLive([this.id]);
    this.node.tick(now);
    this.node.setLive(this.members);
    this.node.repairWith(this.rng.pick(this.members.filter((m) => m !== this.id)));
  }
  receive(now: number, from: NodeId, msg: MerkleMsg): void {
    this.node.receive(now, from, msg);
  }
  request(now: number, client: ClientId, req: MerkleRequest): void {
    this.node.request(now, client, req);
  }
  deadline(): number {
    return this.node.deadline();
  }
  ready(): Ready<MerkleTypes> | undefined {
    if (this.pending !== undefined) return this.pending;
    const rd = this.node.ready();
    if (rd === undefined) return undefined;
    for (const m of [...rd.early, ...rd.messages]) this.ledger.sent(this.id, m.to, m.msg);
    this.pending = rd;
    return rd;
  }
  advance(): void {
    const rd = this.pending;
    this.pending = undefined;
    if (rd !== undefined) {
      for (const r of [...rd.earlyReplies, ...rd.replies]) {
        if (r.reply.type === 'ok') this.ledger.issued(this.id, r.reply.version);
      }
      for (const p of rd.persist) if (p.type === 'forget') this.ledger.collected++;
    }
    this.node.advance();
  }
}

export type MerkleView = ClusterView<MerkleTypes, MerkleDurable>;

export function merkleNodeOf(view: MerkleView, id: NodeId): MerkleNode | undefined {
  const core = view.core(id);
  return core instanceof ObservedMerkle ? core.node : undefined;
}

/**
 * The Merkle checks:
 * - versions never go back: each node issues strictly growing versions across restarts
 *   (ledger), and what a replica stores for a key never goes to an older version, across
 *   its restarts and tombstone collections;
 * - no deleted key reappears: a replica that held a key's tombstone never stores an older
 *   value of it again (in particular after collecting the tombstone);
 * - every message fits messageBytesMax (ledger).
 * After healing: every live replica has the same root.
 */
export class MerkleMonitor implements Monitor<MerkleTypes, MerkleDurable> {
  /** node -> key -> newest version it ever stored, and whether that was a delete. */
  private readonly high = new Map<NodeId, Map<string, { v: Hlc; deleted: boolean }>>();

  constructor(
    readonly view: MerkleView,
    private readonly ledger: MerkleLedger,
  ) {}

  onDeliver(node: NodeId, e: Entry): string | undefined {
    let mine = this.high.get(node);
    if (mine === undefined) {
      mine = new Map();
      this.high.set(node, mine);
    }
    const before = mine.get(e.key);
    if (before !== undefined && compareHlc(e.version, before.v) < 0) {
      if (before.deleted) {
        return `deleted key reappeared: n${node} stored ${e.key} at ${fmt(e.version)} after holding its delete at ${fmt(before.v)}`;
      }
      return `version went back: n${node} stored ${e.key} at ${fmt(e.version)} after ${fmt(before.v)}`;
    }
    if (before === undefined || compareHlc(e.version, before.v) > 0) {
      mine.set(e.key, { v: e.version, deleted: e.value === undefined });
    }
    return undefined;
  }

  afterStep(): string | undefined {
    return this.ledger.violation;
  }

  atEnd(view: MerkleView): string | undefined {
    const live = view.members.filter((id) => merkleNodeOf(view, id) !== undefined);
    const first = live[0];
    if (first === undefined) return undefined;
    const root = merkleNodeOf(view, first)!.tree.rootSummary();
    for (const id of live.slice(1)) {
      const other = merkleNodeOf(view, id)!.tree.rootSummary();
      if (!sameSummary(root, other)) {
        return `not converged: n${id}'s root (${other.count} entries) differs from n${first}'s (${root.count} entries)`;
      }
    }
    return undefined;
  }
}

function describeMessage(msg: MerkleMsg): Json {
  switch (msg.type) {
    case 'hashes':
      return { type: msg.type, session: msg.session, ranges: msg.ranges.length };
    case 'keys':
      return { type: msg.type, session: msg.session, lists: msg.lists.length };
    case 'values':
      return {
        type: msg.type,
        session: msg.session,
        entries: msg.entries.map((e) => `${e.key}@${fmt(e.version)}${e.value ? '' : ' (delete)'}`),
        want: msg.want.length,
      };
    default:
      return { type: msg.type, session: msg.session };
  }
}

const encoder = new TextEncoder();

export function merkleSimProtocol(settings: MerkleSimSettings): SimProtocol<
  MerkleTypes,
  MerkleDurable
> & {
  lastMonitor(): MerkleMonitor | undefined;
  lastLedger(): MerkleLedger | undefined;
} {
  const base = { ...MERKLE_SIM_CONFIG, ...settings.config };
  const workload = { ...defaultMerkleWorkload, ...settings.workload };
  const keys = settings.keys ?? 12;
  const deleteShare = settings.deleteShare ?? 0.3;
  const broken = settings.broken ?? {};
  let ledger = new MerkleLedger(base.messageBytesMax);
  let monitor: MerkleMonitor | undefined;
  return {
    name: settings.name,
    description: settings.description,
    defaultNodes: 5,
    simDefaults: {
      safetyMsMax: workload.safetyMs * 3,
      livenessMs: workload.convergeMs + 5_000,
      ops: 100,
    },

    createCore(init) {
      const config: MerkleConfig = { ...base, id: init.id, members: init.members };
      const rng = init.rng.fork();
      const node = new MerkleNode(config, init.rng, init.durable ?? undefined);
      return new ObservedMerkle(node, init.members, ledger, broken, rng);
    },
    emptyDurable: () => initialMerkleDurable(),
    applyPersist: (d, item) => applyMerklePersist(d, item),

    createMonitor(view) {
      ledger = new MerkleLedger(base.messageBytesMax);
      monitor = new MerkleMonitor(view, ledger);
      return monitor;
    },

    createWorkload: (ctx) =>
      new WriteWorkload<MerkleTypes>(
        ctx,
        workload,
        (rng, n): MerkleRequest => {
          const key = `k${rng.int(keys)}`;
          if (rng.chance(deleteShare)) return { type: 'delete', key };
          return { type: 'put', key, value: encoder.encode(`w${n}`) };
        },
        (reply) => (reply.type === 'refused' ? reply.refusal.type : reply.type),
        () => {
          const m = monitor;
          return m !== undefined && m.atEnd(m.view) === undefined;
        },
        () => undefined,
      ),
    describeMessage,
    lastMonitor: () => monitor,
    lastLedger: () => ledger,
  };
}

export const merkleSim = merkleSimProtocol({
  name: 'merkle',
  description:
    'Merkle-repaired multi-writer map: versions only grow, no delete undone, roots converge',
});

/** The broken variant, registered so the replay command it prints runs through the CLI. */
export const merkleBrokenEarlyCollect = merkleSimProtocol({
  name: 'merkle-broken-collect',
  description: 'deliberately broken: tombstones collected without waiting for every peer',
  broken: { earlyTombstoneCollection: true },
});
