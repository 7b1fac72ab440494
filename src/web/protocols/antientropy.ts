import type { MerkleDurable, MerkleNode, MerkleTypes } from '../../gossip/antientropy/node.ts';
import type {
  ScuttleDurable,
  ScuttleNode,
  ScuttleTypes,
} from '../../gossip/antientropy/scuttlebutt.ts';
import { type MerkleMsg, messageBytes } from '../../gossip/antientropy/wire.ts';
import type { Core, CoreTypes, Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import { merkleSimProtocol, ObservedMerkle } from '../../sim/antientropy/merkle.ts';
import { ObservedScuttle, scuttleSimProtocol } from '../../sim/antientropy/scuttlebutt.ts';
import { Playground } from '../../sim/interactive.ts';
import type { MessageLook, NodeView, PlaygroundProtocol } from '../../sim/interactive-protocol.ts';
import type { SimProtocol } from '../../sim/protocol.ts';

/**
 * Anti-entropy (src/gossip/antientropy) in the playground: the real Merkle replica and the
 * real Scuttlebutt store, each built by its simulator plugin (src/sim/antientropy). The
 * views read the cores' own state: the Merkle tree's range summaries, the Scuttlebutt
 * digests, and the repair messages each replica sends.
 */

const encoder = new TextEncoder();

const emptyView: NodeView = {
  role: 'replica',
  term: 0,
  leader: 0,
  commit: 0,
  applied: 0,
  log: [],
  electionTimer: false,
};

/** A playground adapter around a simulator plugin: the engine needs no more than this. */
function adapter<T extends CoreTypes, D>(
  plugin: SimProtocol<T, D>,
  wrap: (core: Core<T>) => Core<T>,
  request: (value: string) => T['request'],
  look: (msg: T['msg']) => MessageLook,
): PlaygroundProtocol<T, D> {
  return {
    name: plugin.name,
    title: plugin.name,
    createCore: (init) => wrap(plugin.createCore(init)),
    emptyDurable: (members) => plugin.emptyDurable({ id: members[0] ?? 1, members }),
    applyPersist: (d, item) => plugin.applyPersist(d, item),
    nodeView: (core) => (core === undefined ? { ...emptyView, role: 'down' } : emptyView),
    clientRequest: (_id, value) => request(value),
    requestIdOf: () => undefined,
    onReply: () => ({ kind: 'decided', note: 'written' }),
    describeMessage: look,
    describeEvent: () => undefined,
  };
}

// --- Merkle --------------------------------------------------------------------------

/** One repair message as sent: its session, what it carried, its modelled size. */
export interface RepairSend {
  readonly from: NodeId;
  /** Simulated time it was sent. */
  readonly at: number;
  readonly session: number;
  readonly type: MerkleMsg['type'];
  /** `bits:prefix` of each range it carried (hash summaries or key lists). */
  readonly ranges: readonly string[];
  readonly entries: number;
  readonly bytes: number;
}

/** Sends kept for drawing: the latest sessions'. */
const SENDS_KEPT_MAX = 2000;

export class WatchedMerkle implements Core<MerkleTypes> {
  readonly id: NodeId;
  readonly sends: RepairSend[] = [];
  private pending: Ready<MerkleTypes> | undefined;
  /** The time of the input being handled: what the sends it causes are stamped with. */
  private now = 0;

  constructor(readonly observed: ObservedMerkle) {
    this.id = observed.id;
  }
  get node(): MerkleNode {
    return this.observed.node;
  }
  tick(now: number): void {
    this.now = now;
    this.observed.tick(now);
  }
  receive(now: number, from: NodeId, msg: MerkleMsg): void {
    this.now = now;
    this.observed.receive(now, from, msg);
  }
  request(now: number, client: ClientId, req: MerkleTypes['request']): void {
    this.now = now;
    this.observed.request(now, client, req);
  }
  deadline(): number {
    return this.observed.deadline();
  }
  ready(): Ready<MerkleTypes> | undefined {
    this.pending = this.observed.ready();
    return this.pending;
  }
  advance(): void {
    for (const m of this.pending?.messages ?? []) this.sends.push(sendOf(this.id, this.now, m.msg));
    if (this.sends.length > SENDS_KEPT_MAX)
      this.sends.splice(0, this.sends.length - SENDS_KEPT_MAX);
    this.pending = undefined;
    this.observed.advance();
  }
}

function sendOf(from: NodeId, at: number, msg: MerkleMsg): RepairSend {
  const bytes = messageBytes(msg);
  switch (msg.type) {
    case 'hashes':
      return {
        from,
        at,
        session: msg.session,
        type: msg.type,
        ranges: msg.ranges.map((r) => `${r.bits}:${r.prefix}`),
        entries: 0,
        bytes,
      };
    case 'keys':
      return {
        from,
        at,
        session: msg.session,
        type: msg.type,
        ranges: msg.lists.map((l) => `${l.range.bits}:${l.range.prefix}`),
        entries: msg.lists.reduce((s, l) => s + l.keys.length, 0),
        bytes,
      };
    case 'values':
      return {
        from,
        at,
        session: msg.session,
        type: msg.type,
        ranges: [],
        entries: msg.entries.length,
        bytes,
      };
    case 'in-sync':
      return { from, at, session: msg.session, type: msg.type, ranges: ['0:0'], entries: 0, bytes };
  }
}

function merkleLook(msg: MerkleMsg): MessageLook {
  switch (msg.type) {
    case 'hashes':
      return { label: `hashes ×${msg.ranges.length}`, tone: 'vote' };
    case 'in-sync':
      return { label: 'in sync', tone: 'heartbeat' };
    case 'keys':
      return { label: `keys ×${msg.lists.length}`, tone: 'append' };
    case 'values':
      return { label: `values ×${msg.entries.length}`, tone: 'appendReply' };
  }
}

export type MerklePg = Playground<MerkleTypes, MerkleDurable>;

/** Two Merkle replicas that repair every `repairIntervalMs` (slowed so a descent can be watched). */
export function merklePlayground(seed: number, repairIntervalMs: number): MerklePg {
  const plugin = merkleSimProtocol({
    name: 'merkle',
    description: 'merkle in the playground',
    config: { repairIntervalMs, leafKeysMax: 4, listKeysMax: 4, tombstoneTtlMs: 60_000 },
  });
  // The plugin's ledger counts versions and sizes; its monitor is not needed to run.
  const protocol = adapter<MerkleTypes, MerkleDurable>(
    plugin,
    (core) => {
      if (!(core instanceof ObservedMerkle)) throw new Error('the merkle plugin built no replica');
      return new WatchedMerkle(core);
    },
    (value) => {
      const [key = 'k', v = ''] = value.split('=');
      return { type: 'put', key, value: encoder.encode(v) };
    },
    merkleLook,
  );
  return new Playground(protocol, { seed, nodes: 2 });
}

// --- Scuttlebutt ---------------------------------------------------------------------

export class WatchedScuttle implements Core<ScuttleTypes> {
  readonly id: NodeId;
  constructor(readonly observed: ObservedScuttle) {
    this.id = observed.id;
  }
  get node(): ScuttleNode {
    return this.observed.node;
  }
  tick(now: number): void {
    this.observed.tick(now);
  }
  receive(now: number, from: NodeId, msg: ScuttleTypes['msg']): void {
    this.observed.receive(now, from, msg);
  }
  request(now: number, client: ClientId, req: ScuttleTypes['request']): void {
    this.observed.request(now, client, req);
  }
  deadline(): number {
    return this.observed.deadline();
  }
  ready(): Ready<ScuttleTypes> | undefined {
    return this.observed.ready();
  }
  advance(): void {
    this.observed.advance();
  }
}

export type ScuttlePg = Playground<ScuttleTypes, ScuttleDurable>;

/** Scuttlebutt nodes gossiping every `gossipIntervalMs`, at most `mtuDeltas` deltas a message. */
export function scuttlePlayground(
  seed: number,
  nodes: number,
  mtuDeltas: number,
  gossipIntervalMs: number,
): ScuttlePg {
  const plugin = scuttleSimProtocol({
    name: 'scuttlebutt',
    description: 'scuttlebutt in the playground',
    config: { mtuDeltas, gossipIntervalMs },
  });
  // The plugin's own membership and ledger serve this run; its monitor is not needed to run.
  const protocol = adapter<ScuttleTypes, ScuttleDurable>(
    plugin,
    (core) => {
      if (!(core instanceof ObservedScuttle))
        throw new Error('the scuttlebutt plugin built no node');
      return new WatchedScuttle(core);
    },
    (value) => {
      const [key = 'k', v = ''] = value.split('=');
      return { type: 'put', key, value: encoder.encode(v) };
    },
    (msg) =>
      msg.type === 'digest'
        ? { label: 'digest', tone: 'heartbeat' }
        : { label: `${msg.deltas.length} deltas${msg.cut ? ' (cut)' : ''}`, tone: 'append' },
  );
  return new Playground(protocol, { seed, nodes });
}
