import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyGossipPersist, type GossipDurable, type GossipPersist } from '../gossip/index.ts';
import { assertNodeId, type NodeId } from '../kernel/ids.ts';
import { removeTempFiles, writeFileAtomic } from '../runtime/storage/fs-durable.ts';

/**
 * The gossip agent's data directory: one small file, `gossip.json`, with the node id, the
 * cluster name, and the core's hard state (incarnation, last event number). Written whole
 * by write-temp, fdatasync, rename, fsync-dir, so after a crash it is the old or the new
 * state, never a torn one. The core persists its incarnation before any refutation or
 * announcement of it leaves (Ready rule 1), so a restart resumes above every incarnation
 * the cluster ever heard, and is never stuck dead behind its own old one.
 */
const STATE_FILE = 'gossip.json';

export interface GossipDiskState {
  readonly id: NodeId;
  readonly clusterName: string;
  readonly durable: GossipDurable;
}

export class GossipStateStore {
  private state: GossipDiskState;

  private constructor(
    private readonly dir: string,
    state: GossipDiskState,
  ) {
    this.state = state;
  }

  /**
   * Opens `dir`, creating it; refuses a directory of another node id or cluster. `id`
   * undefined: the recorded one, or `freshId` for a new directory.
   */
  static async open(
    dir: string,
    id: NodeId | undefined,
    clusterName: string,
    freshId: () => NodeId,
  ): Promise<{ store: GossipStateStore; fresh: boolean }> {
    await mkdir(dir, { recursive: true });
    await removeTempFiles(dir);
    const found = await readState(dir);
    if (found !== undefined) {
      if (id !== undefined && found.id !== id) {
        throw new Error(`data directory ${dir} belongs to gossip node ${found.id}, not ${id}`);
      }
      if (found.clusterName !== clusterName) {
        throw new Error(`data directory ${dir} belongs to cluster '${found.clusterName}'`);
      }
      return { store: new GossipStateStore(dir, found), fresh: false };
    }
    const state = { id: id ?? freshId(), clusterName, durable: { incarnation: 0, eventSeq: 0 } };
    const store = new GossipStateStore(dir, state);
    await store.write();
    return { store, fresh: true };
  }

  get id(): NodeId {
    return this.state.id;
  }

  /** The durable state the core resumes from; undefined for a node that never ran. */
  get durable(): GossipDurable | undefined {
    const d = this.state.durable;
    return d.incarnation === 0 && d.eventSeq === 0 ? undefined : d;
  }

  /** Makes a batch's hard states durable; resolves once they are. */
  async persist(items: readonly GossipPersist[]): Promise<void> {
    let durable = this.state.durable;
    for (const item of items) durable = applyGossipPersist(durable, item);
    this.state = { ...this.state, durable };
    await this.write();
  }

  private write(): Promise<void> {
    const text = `${JSON.stringify(this.state)}\n`;
    return writeFileAtomic(this.dir, STATE_FILE, [Buffer.from(text, 'utf8')]);
  }
}

async function readState(dir: string): Promise<GossipDiskState | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const raw = JSON.parse(text) as Partial<GossipDiskState>;
  const d = raw.durable;
  if (
    typeof raw.id !== 'number' ||
    typeof raw.clusterName !== 'string' ||
    d === undefined ||
    !Number.isSafeInteger(d.incarnation) ||
    !Number.isSafeInteger(d.eventSeq)
  ) {
    throw new Error(`${join(dir, STATE_FILE)} is not a gossip state file`);
  }
  assertNodeId(raw.id);
  return { id: raw.id, clusterName: raw.clusterName, durable: d };
}
