import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HistoryBuilder } from './builder.ts';
import { type CheckResult, checkHistory } from './check.ts';
import type { HistoryEvent, Json, KvFunction } from './history.ts';
import { pairOperations } from './operations.ts';
import { dropUnobservedWrites } from './prune.ts';
import { bruteForceLinearizable } from './testing.ts';

const h = () => new HistoryBuilder();

/** How many operations of a one-key history that take part are dropped. */
function dropped(history: HistoryBuilder): number {
  const ops = pairOperations(history.events).filter((op) => op.outcome !== 'fail');
  return ops.length - dropUnobservedWrites(ops).length;
}

/** The verdict with and without dropping: each case below needs them to agree. */
function verdicts(history: HistoryBuilder, failedCasObserved = false): CheckResult['verdict'][] {
  const run = (dropUnobserved: boolean) =>
    checkHistory(history.events, { failedCasObserved, dropUnobserved }).verdict;
  return [run(true), run(false)];
}

// Each history below is linearizable only through its indeterminate write: the checker
// would call it not linearizable if the rule that keeps that write were missing.
describe('dropUnobservedWrites keeps every write some operation observes', () => {
  it('drops a timed-out put nobody read, and only it', () => {
    const history = h().invoke(1, 'put', 'x', 'a').info(1).invoke(2, 'get', 'x').ok(2, null);
    expect(dropped(history)).toBe(1);
    expect(verdicts(history)).toEqual(['linearizable', 'linearizable']);
  });

  it('keeps a put whose value an ok get read', () => {
    const history = h().invoke(1, 'put', 'x', 'a').info(1).invoke(2, 'get', 'x').ok(2, 'a');
    expect(dropped(history)).toBe(0);
    expect(verdicts(history)).toEqual(['linearizable', 'linearizable']);
  });

  it('keeps a put whose value an ok cas expected', () => {
    const history = h().invoke(1, 'put', 'x', 'a').info(1).invoke(2, 'cas', 'x', ['a', 'b']).ok(2);
    expect(dropped(history)).toBe(0);
    expect(verdicts(history)).toEqual(['linearizable', 'linearizable']);
  });

  it('keeps a put whose value an indeterminate cas expected, when that cas is observed', () => {
    const history = h()
      .invoke(1, 'put', 'x', 'a')
      .info(1)
      .invoke(2, 'cas', 'x', ['a', 'b'])
      .info(2)
      .invoke(3, 'get', 'x')
      .ok(3, 'b');
    expect(dropped(history)).toBe(0);
    expect(verdicts(history)).toEqual(['linearizable', 'linearizable']);
  });

  it('drops an indeterminate cas nobody observed, then the put only it expected', () => {
    const history = h()
      .invoke(1, 'put', 'x', 'a')
      .info(1)
      .invoke(2, 'cas', 'x', ['a', 'b'])
      .info(2)
      .invoke(3, 'get', 'x')
      .ok(3, null);
    expect(dropped(history)).toBe(2);
    expect(verdicts(history)).toEqual(['linearizable', 'linearizable']);
  });

  it('keeps a put a refused cas expecting another value ran on (failed cas observed)', () => {
    // Only the timed-out put of b explains why the cas expecting a saw something else.
    const history = h()
      .invoke(1, 'put', 'x', 'a')
      .ok(1)
      .invoke(2, 'put', 'x', 'b')
      .info(2)
      .invoke(3, 'cas', 'x', ['a', 'c'])
      .fail(3);
    expect(verdicts(history, true)).toEqual(['linearizable', 'linearizable']);
    const ops = pairOperations(history.events);
    expect(dropUnobservedWrites(ops)).toHaveLength(ops.length);
  });

  it('drops a put that only a refused cas expecting that same value could have seen', () => {
    const history = h()
      .invoke(1, 'put', 'x', 'b')
      .info(1)
      .invoke(3, 'cas', 'x', ['b', 'c'])
      .fail(3);
    const ops = pairOperations(history.events);
    expect(dropUnobservedWrites(ops)).toHaveLength(ops.length - 1);
    expect(verdicts(history, true)).toEqual(['linearizable', 'linearizable']);
  });

  it('keeps a timed-out put of a value another put also wrote, when that value is read', () => {
    // Values need not be unique: the read of a can only be of the timed-out put, since the
    // ok put of a was overwritten by b before the read began.
    const history = h()
      .invoke(1, 'put', 'x', 'a')
      .ok(1)
      .invoke(1, 'put', 'x', 'b')
      .ok(1)
      .invoke(2, 'put', 'x', 'a')
      .info(2)
      .invoke(3, 'get', 'x')
      .ok(3, 'a');
    expect(dropped(history)).toBe(0);
    expect(verdicts(history)).toEqual(['linearizable', 'linearizable']);
  });

  it('keeps a timed-out delete when a read found the key absent', () => {
    const history = h()
      .invoke(1, 'put', 'x', 'a')
      .ok(1)
      .invoke(2, 'delete', 'x')
      .info(2)
      .invoke(3, 'get', 'x')
      .ok(3, null);
    expect(dropped(history)).toBe(0);
    expect(verdicts(history)).toEqual(['linearizable', 'linearizable']);
  });

  it('keeps every operation of a key with an append: an append observes the value it extends', () => {
    const history = h()
      .invoke(1, 'put', 'x', 'a')
      .info(1)
      .invoke(2, 'append', 'x', 'z')
      .ok(2)
      .invoke(3, 'get', 'x')
      .ok(3, 'az');
    expect(dropped(history)).toBe(0);
    expect(verdicts(history)).toEqual(['linearizable', 'linearizable']);
  });

  it('judges observation per key: a read of the same value on another key does not count', () => {
    const history = h()
      .invoke(1, 'put', 'x', 'a')
      .info(1)
      .invoke(2, 'put', 'y', 'a')
      .ok(2)
      .invoke(3, 'get', 'y')
      .ok(3, 'a');
    expect(checkHistory(history.events)).toEqual({
      verdict: 'linearizable',
      keys: 2,
      ops: 3,
      dropped: 1,
    });
  });

  it('still rejects what no write explains once the unobserved ones are gone', () => {
    const history = h()
      .invoke(1, 'put', 'x', 'a')
      .info(1)
      .invoke(2, 'put', 'x', 'b')
      .ok(2)
      .invoke(3, 'get', 'x')
      .ok(3, 'c');
    expect(verdicts(history)).toEqual(['not-linearizable', 'not-linearizable']);
  });
});

/**
 * Random histories heavy in indeterminate operations over few values (so values repeat and
 * timed-out writes are often, but not always, observed): up to eight operations on one or
 * two keys by a few concurrent clients, each going on under a fresh process after an info.
 */
function heavyHistory(opsMax: number, processes: number) {
  const value = fc.constantFrom<Json>(null, 'a', 'b', 'c');
  return fc
    .array(
      fc.record({
        slot: fc.integer({ min: 0, max: processes - 1 }),
        choice: fc.nat({ max: 9 }),
        key: fc.constantFrom('x', 'x', 'y'),
        value,
        other: value,
      }),
      { minLength: 2 * opsMax, maxLength: 3 * opsMax },
    )
    .map((steps) => script(steps, opsMax));
}

interface ScriptStep {
  slot: number;
  choice: number;
  key: string;
  value: Json;
  other: Json;
}

const functions: readonly KvFunction[] = [
  'get',
  'get',
  'put',
  'put',
  'delete',
  'cas',
  'cas',
  'append',
];

function script(steps: readonly ScriptStep[], opsMax: number): HistoryEvent[] {
  const history = h();
  const pending = new Map<number, KvFunction>();
  // A slot's process retires after an info and the slot goes on under a fresh id.
  const processOf = new Map<number, number>();
  // Most reads return the value last written, so that long histories are not all refuted.
  const lastWritten = new Map<string, Json>();
  const reading = new Map<number, string>();
  let invoked = 0;
  for (const { slot, choice, key, value, other } of steps) {
    const process = processOf.get(slot) ?? slot;
    const open = pending.get(process);
    if (open !== undefined) {
      pending.delete(process);
      const read = other === null ? value : (lastWritten.get(reading.get(process)!) ?? null);
      // Refused cas are what `failedCasObserved` reads as observations: make them common.
      const okBelow = open === 'cas' ? 4 : 6;
      if (choice < okBelow) history.ok(process, open === 'get' ? read : undefined);
      else if (choice < 7) history.fail(process);
      else {
        history.info(process);
        processOf.set(slot, process + 1000);
      }
      continue;
    }
    if (invoked === opsMax) continue;
    invoked++;
    const f = functions[(choice + key.length) % functions.length]!;
    const input =
      f === 'cas'
        ? [value, other]
        : f === 'append'
          ? String(value ?? 'd')
          : f === 'get' || f === 'delete'
            ? null
            : value;
    history.invoke(process, f, key, input);
    pending.set(process, f);
    reading.set(process, key);
    if (f === 'append') {
      const base = lastWritten.get(key) ?? null;
      lastWritten.set(
        key,
        typeof base === 'string' || base === null ? `${base ?? ''}${input}` : base,
      );
    } else if (f !== 'get') lastWritten.set(key, f === 'cas' ? other : input);
  }
  return history.events;
}

describe('dropping unobserved writes never changes the verdict', () => {
  it.each([
    [null, false],
    [null, true],
    ['a', true],
  ])(
    'against a brute-force search over every order (initial %j, failed cas observed: %s)',
    (initial, failedCasObserved) => {
      fc.assert(
        fc.property(heavyHistory(8, 6), (events) => {
          const want = bruteForceLinearizable(events, initial, failedCasObserved)
            ? 'linearizable'
            : 'not-linearizable';
          expect(checkHistory(events, { initial, failedCasObserved }).verdict).toBe(want);
          const full = { initial, failedCasObserved, dropUnobserved: false };
          expect(checkHistory(events, full).verdict).toBe(want);
        }),
        { numRuns: 300 },
      );
    },
  );

  it('against the full search on histories too long to enumerate', () => {
    fc.assert(
      fc.property(heavyHistory(40, 12), fc.boolean(), (events, failedCasObserved) => {
        const pruned = checkHistory(events, { failedCasObserved });
        const full = checkHistory(events, { failedCasObserved, dropUnobserved: false });
        expect(pruned.verdict).toBe(full.verdict);
      }),
      { numRuns: 200 },
    );
  });
});

describe('a history full of timeouts is decided', () => {
  // Twenty writes time out while a client reads the key still absent, then writes and reads
  // back its own values. The search tries the timed-out writes first and, for the read of
  // absent, must refute every nonempty subset of them (2^20 configurations), none of which
  // anyone observed.
  const history = h();
  for (let p = 0; p < 20; p++) history.invoke(p, 'put', 'k', `lost ${p}`);
  history.invoke(99, 'get', 'k').ok(99, null);
  for (let i = 0; i < 20; i++)
    history.invoke(99, 'put', 'k', `v${i}`).ok(99).invoke(99, 'get', 'k').ok(99, `v${i}`);
  for (let p = 0; p < 20; p++) history.info(p);

  it('with a small step budget, once the unobserved writes are dropped', () => {
    expect(checkHistory(history.events, { stepsMax: 10_000 })).toEqual({
      verdict: 'linearizable',
      keys: 1,
      ops: 61,
      dropped: 20,
    });
  });

  it('but not by the full search within a hundred times that budget', () => {
    const full = checkHistory(history.events, { stepsMax: 1_000_000, dropUnobserved: false });
    expect(full.verdict).toBe('unknown');
  });
});
