/**
 * The conformance suite every `Wal` implementation passes (run from wal.test.ts), in the
 * manner of hono's router/common.case.test.ts: one behaviour, several implementations.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Wal, WalEntry, WalRecord } from './wal.ts';

export interface WalHarness {
  /** A fresh, empty log whose first record gets seq `initialSeq`. */
  open(initialSeq: number): Promise<Wal>;
  /** Removes whatever `open` created. */
  cleanup(): Promise<void>;
}

export const entry = (type: number, text: string): WalEntry => ({
  type,
  payload: new TextEncoder().encode(text),
});

export async function readAll(wal: Wal, fromSeq?: number): Promise<WalRecord[]> {
  const out: WalRecord[] = [];
  for await (const r of wal.read(fromSeq)) out.push(r);
  return out;
}

const show = (records: readonly WalRecord[]) =>
  records.map((r) => `${r.seq}:${r.type}:${new TextDecoder().decode(r.payload)}`);

export function walConformance(name: string, makeHarness: () => WalHarness): void {
  describe(`Wal conformance: ${name}`, () => {
    let harness: WalHarness | undefined;
    const open = (initialSeq = 1) => {
      harness = makeHarness();
      return harness.open(initialSeq);
    };
    afterEach(async () => {
      await harness?.cleanup();
      harness = undefined;
    });

    it('numbers records consecutively from the initial seq and reads them back in order', async () => {
      const wal = await open(7);
      expect([wal.firstSeq(), wal.nextSeq()]).toEqual([7, 7]);
      expect(await wal.append([entry(1, 'a'), entry(2, 'b')])).toBe(7);
      expect(await wal.append([{ type: 255, payload: new Uint8Array(0) }])).toBe(9);
      expect(wal.nextSeq()).toBe(10);
      expect(show(await readAll(wal))).toEqual(['7:1:a', '8:2:b', '9:255:']);
      expect(show(await readAll(wal, 8))).toEqual(['8:2:b', '9:255:']);
      expect(await readAll(wal, 10)).toEqual([]);
      await wal.close();
    });

    it('gives concurrent appends seqs in call order and keeps that order in the log', async () => {
      const wal = await open();
      const seqs = await Promise.all(
        Array.from({ length: 50 }, (_, i) => wal.append([entry(0, `x${i}`), entry(0, `y${i}`)])),
      );
      expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => 1 + 2 * i));
      const records = await readAll(wal);
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      expect(show(records.slice(0, 3))).toEqual(['1:0:x0', '2:0:y0', '3:0:x1']);
      await wal.close();
    });

    it('rejects record types outside a byte and use after close', async () => {
      const wal = await open();
      await expect(async () => wal.append([entry(256, 'no')])).rejects.toThrow();
      await wal.close();
      expect(() => wal.append([entry(0, 'late')])).toThrow(/close/);
    });

    it('truncates a suffix and continues numbering from the cut', async () => {
      const wal = await open();
      await wal.append([entry(0, 'a'), entry(0, 'b'), entry(0, 'c')]);
      expect(() => wal.truncateSuffix(5)).toThrow(/outside/);
      await wal.truncateSuffix(2);
      expect(wal.nextSeq()).toBe(2);
      expect(await wal.append([entry(0, 'B')])).toBe(2);
      expect(show(await readAll(wal))).toEqual(['1:0:a', '2:0:B']);
      await wal.truncateSuffix(3); // a no-op at the end
      await wal.truncateSuffix(1);
      expect(await readAll(wal)).toEqual([]);
      await wal.close();
    });

    it('drops a prefix without losing anything at or after the cut', async () => {
      const wal = await open();
      for (let i = 1; i <= 20; i++) await wal.append([entry(0, `r${i}`)]);
      await wal.dropPrefix(15);
      expect(wal.firstSeq()).toBeLessThanOrEqual(15);
      expect(wal.nextSeq()).toBe(21);
      const kept = await readAll(wal, 15);
      expect(show(kept)).toEqual([
        '15:0:r15',
        '16:0:r16',
        '17:0:r17',
        '18:0:r18',
        '19:0:r19',
        '20:0:r20',
      ]);
      expect(await wal.append([entry(0, 'r21')])).toBe(21);
      await wal.close();
    });

    it('resets to an empty log at any seq, forwards or backwards', async () => {
      const wal = await open();
      await wal.append([entry(0, 'a'), entry(0, 'b')]);
      await wal.reset(100);
      expect([wal.firstSeq(), wal.nextSeq()]).toEqual([100, 100]);
      expect(await readAll(wal)).toEqual([]);
      expect(await wal.append([entry(3, 'c')])).toBe(100);
      await wal.reset(50);
      expect(await wal.append([entry(3, 'd')])).toBe(50);
      expect(show(await readAll(wal))).toEqual(['50:3:d']);
      await wal.close();
    });

    it('agrees with an array model over random operation sequences', async () => {
      const op = fc.oneof(
        {
          weight: 5,
          arbitrary: fc.record({
            kind: fc.constant('append' as const),
            n: fc.integer({ min: 1, max: 4 }),
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({ kind: fc.constant('truncate' as const), back: fc.nat(5) }),
        },
        {
          weight: 1,
          arbitrary: fc.record({ kind: fc.constant('drop' as const), ahead: fc.nat(8) }),
        },
        {
          weight: 1,
          arbitrary: fc.record({ kind: fc.constant('reset' as const), to: fc.nat(40) }),
        },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
          await harness?.cleanup();
          const wal = await open();
          const model: string[] = []; // payload of seq modelFirst + i
          let modelFirst = 1;
          let counter = 0;
          for (const o of ops) {
            const next = modelFirst + model.length;
            if (o.kind === 'append') {
              const texts = Array.from({ length: o.n }, () => `p${counter++}`);
              expect(await wal.append(texts.map((t) => entry(0, t)))).toBe(next);
              model.push(...texts);
            } else if (o.kind === 'truncate') {
              const to = Math.max(wal.firstSeq(), modelFirst, next - o.back);
              await wal.truncateSuffix(to);
              model.length = to - modelFirst;
            } else if (o.kind === 'drop') {
              const before = Math.min(next, modelFirst + o.ahead);
              await wal.dropPrefix(before);
              model.splice(0, before - modelFirst);
              modelFirst = before;
            } else {
              await wal.reset(o.to);
              model.length = 0;
              modelFirst = o.to;
            }
            expect(wal.nextSeq()).toBe(modelFirst + model.length);
          }
          const got = await readAll(wal, modelFirst);
          expect(got.map((r) => new TextDecoder().decode(r.payload))).toEqual(model);
          expect(got.map((r) => r.seq)).toEqual(model.map((_, i) => modelFirst + i));
          await wal.close();
        }),
        { numRuns: 15 },
      );
    });
  });
}
