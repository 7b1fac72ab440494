import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { imageOf, type KvCommand, type KvOp, KvStateMachine } from '../kv/machine.ts';
import { wirePacker } from '../runtime/msgpack.ts';
import {
  decodeKvSnapshot,
  encodeKvSnapshot,
  KV_SNAPSHOT_FORMAT,
  KvSnapshotEncoder,
} from './snapshot-codec.ts';

function machineAfter(commands: readonly KvCommand[]): KvStateMachine {
  const kv = new KvStateMachine();
  commands.forEach((cmd, i) => {
    kv.apply(i + 1, cmd);
  });
  return kv;
}

/** Byte strings (src/kv/bytes.ts), from the whole byte range. */
function bytes(maxLength: number): fc.Arbitrary<string> {
  return fc
    .array(fc.integer({ min: 0, max: 0xff }), { maxLength })
    .map((b) => String.fromCharCode(...b));
}

const command: fc.Arbitrary<KvCommand> = fc.record({
  session: fc.integer({ min: 0, max: 5 }),
  seq: fc.integer({ min: 1, max: 1000 }),
  op: fc.oneof(
    fc.record({
      f: fc.constant('put' as const),
      key: bytes(3),
      value: bytes(40),
    }),
    fc.record({ f: fc.constant('delete' as const), key: bytes(3) }),
    fc.record({ f: fc.constant('compact' as const), revision: fc.integer({ min: 1, max: 40 }) }),
  ),
});

function encodeInSteps(encoder: KvSnapshotEncoder): { bytes: Uint8Array; steps: number } {
  let steps = 1;
  while (!encoder.step()) steps++;
  return { bytes: encoder.result(), steps };
}

describe('KvSnapshotEncoder', () => {
  it('produces exactly the one-shot encoding, whatever the state', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
        const snap = machineAfter(commands).snapshot();
        const { bytes } = encodeInSteps(new KvSnapshotEncoder(snap));
        expect(bytes).toEqual(encodeKvSnapshot(snap));
      }),
    );
  });

  it('encodes a large state in several slices, which decode to the same state', () => {
    const commands: KvCommand[] = [];
    for (let i = 0; i < 5000; i++) {
      commands.push({
        session: 1 + (i % 7),
        seq: i + 1,
        op: { f: 'put', key: `k${i}`, value: 'v' },
      });
    }
    const kv = machineAfter(commands);
    const encoder = new KvSnapshotEncoder(kv.snapshot());
    expect(() => encoder.result()).toThrow(/not finished/);
    const { bytes, steps } = encodeInSteps(encoder);
    expect(steps).toBeGreaterThanOrEqual(5);
    expect(decodeKvSnapshot(bytes).snapshot()).toEqual(kv.snapshot());
  });
});

describe('the kv snapshot format', () => {
  it('carries every byte of keys, values and their history exactly, compactions included', () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
        const kv = machineAfter(commands);
        const bytes = encodeKvSnapshot(kv.snapshot());
        expect(bytes[0]).toBe(KV_SNAPSHOT_FORMAT);
        const back = decodeKvSnapshot(bytes);
        expect(imageOf(back.snapshot())).toEqual(imageOf(kv.snapshot()));
        expect(back.eventsSince(kv.compactRevision)).toEqual(kv.eventsSince(kv.compactRevision));
      }),
    );
  });

  it('refuses a format-1 snapshot (plain JSON) with a clear error', () => {
    const old = new TextEncoder().encode(
      '{"appliedIndex":3,"revision":2,"entries":[],"sessions":[]}',
    );
    expect(() => decodeKvSnapshot(old)).toThrow(/format 1 \(before MVCC\) cannot be read/);
    expect(() => decodeKvSnapshot(Uint8Array.of(9))).toThrow(/unknown kv snapshot format 9/);
  });
});

describe('replica commands over msgpack', () => {
  it('carry byte-string keys and values byte-exact', () => {
    fc.assert(
      fc.property(bytes(8), bytes(64), (key, value) => {
        const op: KvOp = {
          f: 'txn',
          compare: [{ key, target: 'value', result: 'equal', value }],
          success: [{ f: 'put', key, value }],
          failure: [{ f: 'range', key, rangeEnd: '\0' }],
        };
        const cmd: KvCommand = { session: 1, seq: 2, op };
        expect(wirePacker.unpack(wirePacker.pack(cmd))).toEqual(cmd);
      }),
    );
  });
});
