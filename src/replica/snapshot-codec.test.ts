import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type KvCommand, KvStateMachine } from '../kv/machine.ts';
import { decodeKvSnapshot, encodeKvSnapshot, KvSnapshotEncoder } from './snapshot-codec.ts';

function machineAfter(commands: readonly KvCommand[]): KvStateMachine {
  const kv = new KvStateMachine();
  commands.forEach((cmd, i) => {
    kv.apply(i + 1, cmd);
  });
  return kv;
}

const command: fc.Arbitrary<KvCommand> = fc.record({
  session: fc.integer({ min: 0, max: 5 }),
  seq: fc.integer({ min: 1, max: 1000 }),
  op: fc.oneof(
    fc.record({
      f: fc.constant('put' as const),
      key: fc.string({ maxLength: 6 }),
      value: fc.string({ maxLength: 40, unit: 'binary' }),
    }),
    fc.record({ f: fc.constant('delete' as const), key: fc.string({ maxLength: 6 }) }),
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
