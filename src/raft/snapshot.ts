import { assert } from '../kernel/assert.ts';
import type { Snapshot, SnapshotChunkMsg, SnapshotMeta } from './types.ts';

/** The chunk of `snapshot` that starts at `offset`: at most `chunkBytes` bytes. */
export function snapshotChunk(snapshot: Snapshot, offset: number, chunkBytes: number): Uint8Array {
  assert(offset >= 0 && offset <= snapshot.data.length, `chunk offset ${offset} out of range`);
  return snapshot.data.subarray(offset, Math.min(snapshot.data.length, offset + chunkBytes));
}

export type ChunkOutcome =
  /** Keep sending from `nextOffset` (also the answer to a duplicate or out-of-order chunk). */
  | { readonly kind: 'progress'; readonly nextOffset: number }
  | { readonly kind: 'complete'; readonly snapshot: Snapshot }
  | { readonly kind: 'tooLarge' };

/**
 * Follower side of InstallSnapshot (paper section 7, figure 13): reassembles one snapshot at a
 * time from chunks that must arrive in offset order. Memory is one buffer of the snapshot's
 * size, never more than `snapshotBytesMax`. A chunk of another snapshot at offset 0 restarts
 * the assembly; any other chunk is answered with the offset still expected.
 */
export class SnapshotReceiver {
  private meta: SnapshotMeta | undefined;
  private buffer = new Uint8Array(0);
  private received = 0;

  constructor(private readonly snapshotBytesMax: number) {}

  /** Bytes buffered for an incomplete snapshot (for tests and status). */
  get bufferedBytes(): number {
    return this.received;
  }

  accept(m: SnapshotChunkMsg): ChunkOutcome {
    if (m.totalBytes > this.snapshotBytesMax) return { kind: 'tooLarge' };
    const same = this.meta?.index === m.meta.index && this.meta.term === m.meta.term;
    if (!same) {
      if (m.offset !== 0) return { kind: 'progress', nextOffset: 0 };
      this.meta = m.meta;
      this.buffer = new Uint8Array(m.totalBytes);
      this.received = 0;
    }
    if (m.offset !== this.received) return { kind: 'progress', nextOffset: this.received };
    if (m.offset + m.data.length > this.buffer.length) return { kind: 'tooLarge' };
    this.buffer.set(m.data, m.offset);
    this.received += m.data.length;
    if (this.received < this.buffer.length) return { kind: 'progress', nextOffset: this.received };
    const snapshot: Snapshot = { meta: m.meta, data: this.buffer };
    this.reset();
    return { kind: 'complete', snapshot };
  }

  reset(): void {
    this.meta = undefined;
    this.buffer = new Uint8Array(0);
    this.received = 0;
  }
}
