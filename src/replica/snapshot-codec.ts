import { type KvSnapshot, KvStateMachine } from '../kv/machine.ts';

/**
 * Key-value snapshots travel inside Raft snapshots as bytes. JSON keeps them readable and
 * needs nothing outside the language; the state machine's values are all JSON already.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeKvSnapshot(snapshot: KvSnapshot): Uint8Array {
  return encoder.encode(JSON.stringify(snapshot));
}

export function decodeKvSnapshot(bytes: Uint8Array): KvStateMachine {
  return KvStateMachine.restore(JSON.parse(decoder.decode(bytes)) as KvSnapshot);
}

/** Most records one `step` encodes, and most UTF-16 units it produces (about one slice). */
const SLICE_RECORDS = 1000;
const SLICE_CHARS = 256 * 1024;

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
  private list: 'entries' | 'sessions' = 'entries';
  private next = 0;
  private done = false;

  constructor(readonly snapshot: KvSnapshot) {
    // The key order of JSON.stringify(snapshot): that of the object `snapshot()` builds.
    this.push(
      `{"appliedIndex":${JSON.stringify(snapshot.appliedIndex)},` +
        `"revision":${JSON.stringify(snapshot.revision)},"entries":[`,
    );
  }

  /** Encodes the next slice; returns whether the whole snapshot is encoded. */
  step(): boolean {
    let text = '';
    let count = 0;
    while (!this.done && count < SLICE_RECORDS && text.length < SLICE_CHARS) {
      const records: readonly unknown[] =
        this.list === 'entries' ? this.snapshot.entries : this.snapshot.sessions;
      if (this.next < records.length) {
        if (this.next > 0) text += ',';
        text += JSON.stringify(records[this.next]);
        this.next++;
        count++;
      } else if (this.list === 'entries') {
        text += '],"sessions":[';
        this.list = 'sessions';
        this.next = 0;
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
