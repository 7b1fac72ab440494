import { type AuthImage, emptyAuthImage } from '../kv/auth.ts';
import { type KvImage, type KvLimits, type KvSnapshot, KvStateMachine } from '../kv/machine.ts';
import type { KvRecord } from '../kv/mvcc.ts';
import type { KeyValue } from '../kv/ops.ts';

/**
 * Key-value snapshots travel inside Raft and Multi-Paxos snapshots as bytes: one format byte,
 * then JSON. JSON keeps them readable and needs nothing outside the language, and it carries
 * the machine's byte strings exactly (see src/kv/bytes.ts): every code unit is below 0xD800,
 * so the UTF-8 of the JSON text decodes back to the same units.
 *
 * Format 2 (the MVCC machine): the store's history, as the machine must keep it: the live keys
 * just below the compaction revision as [key, value, createRevision, modRevision, version,
 * lease], then every write since as [revision, key, value or null for a delete, lease], from
 * which the restore re-derives versions, create revisions and watch events. Format 1 (plain
 * JSON, starting with '{') held only the latest value of each key as UTF-16 text; it is
 * refused with a clear error rather than guessed at: its keys' create revisions and history
 * are gone, and a replica that invented them would differ from its peers.
 */
export const KV_SNAPSHOT_FORMAT = 2;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A snapshot the decoder cannot read, with why. */
export class KvSnapshotFormatError extends Error {
  override readonly name = 'KvSnapshotFormatError';
}

export function encodeKvSnapshot(snapshot: KvSnapshot): Uint8Array {
  const encoding = new KvSnapshotEncoder(snapshot);
  while (!encoding.step()) {
    // every step encodes a slice
  }
  return encoding.result();
}

export function decodeKvSnapshot(bytes: Uint8Array, limits?: KvLimits): KvStateMachine {
  const format = bytes[0];
  if (format === 0x7b) {
    throw new KvSnapshotFormatError(
      'kv snapshot format 1 (before MVCC) cannot be read: restore this node from a peer ' +
        '(remove its data directory and add it again) or from a format-2 snapshot',
    );
  }
  if (format !== KV_SNAPSHOT_FORMAT) {
    throw new KvSnapshotFormatError(`unknown kv snapshot format ${format ?? '(empty)'}`);
  }
  const json = JSON.parse(decoder.decode(bytes.subarray(1))) as Wire;
  const image: KvImage = {
    appliedIndex: json.appliedIndex,
    revision: json.revision,
    compactRevision: json.compactRevision,
    leaseIdHigh: json.leaseIdHigh,
    leases: json.leases,
    base: json.base.map(([key, value, createRevision, modRevision, version, lease]) => ({
      key,
      value,
      createRevision,
      modRevision,
      version,
      lease,
    })),
    log: json.log,
    sessions: json.sessions,
    // Snapshots from before auth have none: auth off, no users.
    auth: json.auth ?? emptyAuthImage,
  };
  return KvStateMachine.restore(image, limits);
}

interface Wire {
  readonly appliedIndex: number;
  readonly revision: number;
  readonly compactRevision: number;
  readonly leaseIdHigh: number;
  readonly leases: KvImage['leases'];
  readonly base: readonly (readonly [string, string, number, number, number, number])[];
  readonly log: KvImage['log'];
  readonly sessions: KvImage['sessions'];
  readonly auth?: AuthImage;
}

/** Most records one `step` encodes, and most UTF-16 units it produces (about one slice). */
const SLICE_RECORDS = 1000;
const SLICE_CHARS = 256 * 1024;

type ListName = 'leases' | 'base' | 'log' | 'sessions';
const LISTS: readonly ListName[] = ['leases', 'base', 'log', 'sessions'];

function recordJson(list: ListName, record: unknown): string {
  switch (list) {
    case 'base': {
      const kv = record as KeyValue;
      return JSON.stringify([
        kv.key,
        kv.value,
        kv.createRevision,
        kv.modRevision,
        kv.version,
        kv.lease,
      ]);
    }
    case 'log': {
      const r = record as KvRecord;
      return JSON.stringify([r.rev, r.key, r.kv === null ? null : r.kv.value, r.kv?.lease ?? 0]);
    }
    default:
      return JSON.stringify(record);
  }
}

/**
 * Encodes a snapshot a slice at a time, to exactly the bytes of `encodeKvSnapshot`. A
 * replica compacting ten thousand keys in one go stopped its node for 10 ms or more (the
 * slowest writes of a loaded cluster); in slices of about half a millisecond it
 * interleaves with the traffic. The snapshot must not change while it is encoded: the
 * state machine's snapshots are views of immutable records.
 */
export class KvSnapshotEncoder {
  private readonly chunks: Uint8Array[] = [];
  private bytes = 0;
  private list = 0;
  private next = 0;
  private done = false;

  constructor(readonly snapshot: KvSnapshot) {
    this.chunks.push(Uint8Array.of(KV_SNAPSHOT_FORMAT));
    this.bytes = 1;
    this.push(
      `{"appliedIndex":${snapshot.appliedIndex},"revision":${snapshot.revision},` +
        `"compactRevision":${snapshot.compactRevision},"leaseIdHigh":${snapshot.leaseIdHigh},` +
        // Users and roles are few (an administrator makes them): one piece, not sliced.
        `"auth":${JSON.stringify(snapshot.auth)},"${LISTS[0]}":[`,
    );
  }

  /** Encodes the next slice; returns whether the whole snapshot is encoded. */
  step(): boolean {
    let text = '';
    let count = 0;
    while (!this.done && count < SLICE_RECORDS && text.length < SLICE_CHARS) {
      const name = LISTS[this.list]!;
      const records: readonly unknown[] = this.snapshot[name];
      if (this.next < records.length) {
        if (this.next > 0) text += ',';
        text += recordJson(name, records[this.next]);
        this.next++;
        count++;
      } else if (this.list + 1 < LISTS.length) {
        this.list++;
        this.next = 0;
        text += `],"${LISTS[this.list]}":[`;
      } else {
        text += ']}';
        this.done = true;
      }
    }
    if (text.length > 0) this.push(text);
    return this.done;
  }

  /** The encoded snapshot; only once `step` returned true. */
  result(): Uint8Array {
    if (!this.done) throw new Error('snapshot encoding not finished');
    const out = new Uint8Array(this.bytes);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  private push(text: string): void {
    const chunk = encoder.encode(text);
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }
}
