import { join } from 'node:path';
import { assert, unreachable } from '../kernel/assert.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { KvCommand } from '../kv/machine.ts';
import {
  isZeroProposalId,
  maxProposalId,
  type ProposalId,
  ZERO_PROPOSAL_ID,
} from '../paxos/ballot.ts';
import type { Batch, MultiPersist } from '../paxos/multi/types.ts';
import type { MultiKvDurable, MultiKvSnapshot } from '../replica/multipaxos-kv.ts';
import { filePacker } from '../runtime/msgpack.ts';
import type { FileWal } from '../runtime/storage/file-wal.ts';
import { FileSnapshotStore } from '../runtime/storage/snapshot.ts';
import type { WalMetrics } from '../runtime/storage/wal.ts';
import { claimDirectory, openWal, readSnapshotData, saveSnapshotData } from './storage-common.ts';

/**
 * A Multi-Paxos node's disk: every persist item except snapshots is one WAL record, so a
 * Ready batch costs one append and one fdatasync however many promises, accepts and chosen
 * instances it carries, and the WAL's record order is the core's persist order.
 *
 *     <dir>/node.json    which node this directory belongs to (refuses another id)
 *     <dir>/wal/         FileWal segments: one msgpack'd MultiPersist per record
 *     <dir>/snapshots/   FileSnapshotStore; meta = { upTo }, data = the KV image
 *
 * Recovery folds the WAL over the newest snapshot with `max` semantics (a promise or a
 * proposal id never goes back; instances the snapshot covers are ignored), so replaying a
 * record twice is harmless. That is what makes compaction crash-safe: after a snapshot is
 * durable, the state it does not cover (promise, proposal id, accepted and chosen
 * instances above it) is appended again as a checkpoint, and only then is the WAL prefix
 * before the checkpoint dropped. A crash between any two steps restarts from a superset of
 * the records it needs.
 */
export interface MultiPaxosStorageOptions {
  readonly dir: string;
  readonly id: NodeId;
  readonly walMetrics?: WalMetrics;
  readonly segmentBytesMax?: number;
  readonly recordBytesMax?: number;
}

type KvPersist = MultiPersist<KvCommand, MultiKvSnapshot>;
/** The WAL holds every persist item but snapshots, which live in the snapshot store. */
type WalItem = Exclude<KvPersist, { type: 'snapshot' }>;

const PERSIST_RECORD = 1;

/** The durable state as the disk holds it, folded in place (the core's is copy-on-write). */
interface Folded {
  promised: ProposalId;
  lastProposalId: ProposalId;
  readonly accepted: Map<number, { readonly ballot: ProposalId; readonly value: Batch<KvCommand> }>;
  readonly chosen: Map<number, Batch<KvCommand>>;
  snapshot: { readonly upTo: number; readonly data: MultiKvSnapshot } | null;
}

export class MultiPaxosStorage {
  private constructor(
    private readonly wal: FileWal,
    private readonly snapshots: FileSnapshotStore,
    private readonly folded: Folded,
    /** Whether this directory held no state before (a first boot). */
    readonly fresh: boolean,
  ) {}

  /**
   * Opens the directory and rebuilds the durable state: the newest snapshot, then every WAL
   * record folded over it. Throws WalCorruptionError on damage before the WAL's tail.
   */
  static async open(options: MultiPaxosStorageOptions): Promise<MultiPaxosStorage> {
    const fresh = await claimDirectory(options.dir, { id: options.id, protocol: 'multipaxos' });
    const snapshots = await FileSnapshotStore.open(join(options.dir, 'snapshots'));
    const wal = await openWal(options.dir, options);
    try {
      const folded: Folded = {
        promised: ZERO_PROPOSAL_ID,
        lastProposalId: ZERO_PROPOSAL_ID,
        accepted: new Map(),
        chosen: new Map(),
        snapshot: await loadSnapshot(snapshots),
      };
      for await (const record of wal.read()) {
        assert(record.type === PERSIST_RECORD, `WAL record ${record.seq} has type ${record.type}`);
        fold(folded, decodeItem(record.payload, record.seq));
      }
      return new MultiPaxosStorage(wal, snapshots, folded, fresh);
    } catch (err) {
      await wal.close();
      throw err;
    }
  }

  /**
   * The durable state for `MultiPaxosKvReplica.restore`. The maps are copies: the core owns
   * what it is given, and the storage keeps folding its own.
   */
  durable(): MultiKvDurable {
    const f = this.folded;
    return {
      promised: f.promised,
      lastProposalId: f.lastProposalId,
      accepted: new Map(f.accepted),
      chosen: new Map(f.chosen),
      snapshot: f.snapshot,
    };
  }

  /** Writes a batch's persist items in order; resolves once every one is durable. */
  async persist(items: readonly KvPersist[]): Promise<void> {
    let run: WalItem[] = [];
    for (const item of items) {
      if (item.type !== 'snapshot') {
        run.push(item);
        continue;
      }
      await this.append(run);
      run = [];
      await this.saveSnapshot(item.upTo, item.data);
    }
    await this.append(run);
  }

  async close(): Promise<void> {
    await this.wal.close();
  }

  private async append(items: readonly WalItem[]): Promise<void> {
    if (items.length === 0) return;
    for (const item of items) fold(this.folded, item);
    await this.wal.append(
      items.map((item) => ({ type: PERSIST_RECORD, payload: filePacker.pack(item) })),
    );
  }

  /**
   * Makes the snapshot durable, re-appends what it does not cover as a checkpoint, then
   * drops the WAL before the checkpoint (see the file comment for why each step is safe).
   */
  private async saveSnapshot(upTo: number, data: MultiKvSnapshot): Promise<void> {
    const current = this.folded.snapshot;
    if (current !== null && current.upTo >= upTo) return;
    await saveSnapshotData(this.snapshots, filePacker.pack({ upTo }), data);
    fold(this.folded, { type: 'snapshot', upTo, data });
    const checkpointFrom = this.wal.nextSeq();
    const checkpoint = checkpointOf(this.folded);
    if (checkpoint.length > 0) {
      await this.wal.append(
        checkpoint.map((item) => ({ type: PERSIST_RECORD, payload: filePacker.pack(item) })),
      );
    }
    await this.wal.dropPrefix(checkpointFrom);
  }
}

/** The records that rebuild, over the snapshot, everything `f` holds beyond it. */
function checkpointOf(f: Folded): WalItem[] {
  const items: WalItem[] = [];
  if (!isZeroProposalId(f.promised)) items.push({ type: 'promise', ballot: f.promised });
  if (!isZeroProposalId(f.lastProposalId)) {
    items.push({ type: 'proposalId', id: f.lastProposalId });
  }
  for (const [instance, a] of f.accepted) {
    items.push({ type: 'accept', instance, ballot: a.ballot, value: a.value });
  }
  for (const [instance, value] of f.chosen) items.push({ type: 'chosen', instance, value });
  return items;
}

/**
 * Folds one item like `applyMultiPersist` does, but in place and idempotently: replaying a
 * checkpoint over the records it summarises must not trip the "never decreases" checks.
 */
function fold(f: Folded, item: KvPersist): void {
  const covered = (instance: number) => f.snapshot !== null && instance <= f.snapshot.upTo;
  switch (item.type) {
    case 'promise':
      f.promised = maxProposalId(f.promised, item.ballot);
      return;
    case 'accept':
      if (covered(item.instance)) return;
      f.accepted.set(item.instance, { ballot: item.ballot, value: item.value });
      f.promised = maxProposalId(f.promised, item.ballot);
      return;
    case 'proposalId':
      f.lastProposalId = maxProposalId(f.lastProposalId, item.id);
      return;
    case 'chosen':
      if (!covered(item.instance)) f.chosen.set(item.instance, item.value);
      return;
    case 'snapshot': {
      if (f.snapshot !== null && f.snapshot.upTo >= item.upTo) return;
      f.snapshot = { upTo: item.upTo, data: item.data };
      for (const instance of f.accepted.keys()) {
        if (instance <= item.upTo) f.accepted.delete(instance);
      }
      for (const instance of f.chosen.keys()) {
        if (instance <= item.upTo) f.chosen.delete(instance);
      }
      return;
    }
    default:
      unreachable(item, 'multi persist item');
  }
}

async function loadSnapshot(store: FileSnapshotStore): Promise<Folded['snapshot']> {
  const info = store.latest();
  if (info === undefined) return null;
  const meta = filePacker.unpack(info.meta) as { upTo?: unknown };
  assert(
    typeof meta.upTo === 'number' && Number.isSafeInteger(meta.upTo) && meta.upTo >= 1,
    `snapshot ${info.id} has malformed meta`,
  );
  return { upTo: meta.upTo, data: await readSnapshotData(store, info) };
}

const itemTypes = new Set<string>(['promise', 'accept', 'proposalId', 'chosen']);

function decodeItem(payload: Uint8Array, seq: number): WalItem {
  const item = filePacker.unpack(payload) as { type?: unknown } | null;
  assert(
    typeof item?.type === 'string' && itemTypes.has(item.type),
    `WAL record ${seq} is not a Multi-Paxos persist item`,
  );
  return item as WalItem;
}
