import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HistoryBuilder } from './builder.ts';
import { checkHistory } from './check.ts';
import type { HistoryEvent, Json, KvFunction } from './history.ts';
import { bruteForceLinearizable, same } from './testing.ts';

/** A random tiny history: a script of steps, each invoking or completing some process's operation. */
const tinyHistory = fc
  .array(
    fc.record({
      process: fc.integer({ min: 0, max: 2 }),
      choice: fc.nat({ max: 9 }),
      key: fc.constantFrom('x', 'y'),
      value: fc.constantFrom<Json>(null, 1, 2, 'a'),
      other: fc.constantFrom<Json>(null, 1, 2, 'a'),
    }),
    { maxLength: 18 },
  )
  .map((steps) => {
    const h = new HistoryBuilder();
    const pending = new Set<number>();
    const retired = new Set<number>();
    const reading = new Set<number>();
    let invoked = 0;
    for (const { process, choice, key, value, other } of steps) {
      if (retired.has(process)) continue;
      if (pending.has(process)) {
        pending.delete(process);
        // Only a read's completion carries a result; other completions echo the invocation.
        if (choice < 6) h.ok(process, reading.has(process) ? value : undefined);
        else if (choice < 8) h.fail(process);
        else {
          h.info(process);
          retired.add(process);
        }
        continue;
      }
      if (invoked === 7) continue;
      invoked++;
      const f: KvFunction = (
        ['get', 'get', 'put', 'put', 'delete', 'cas', 'cas', 'append'] as const
      )[choice % 8]!;
      const input =
        f === 'cas' ? [value, other] : f === 'append' ? String(other) : f === 'get' ? null : value;
      h.invoke(process, f, key, input);
      pending.add(process);
      if (f === 'get') reading.add(process);
      else reading.delete(process);
    }
    return h.events;
  });

describe('checkHistory agrees with a brute-force checker on tiny histories', () => {
  it.each([
    [null, false],
    ['', true],
  ])('initial value %j, failed cas observed: %s', (initial, failedCasObserved) => {
    fc.assert(
      fc.property(tinyHistory, (events) => {
        const fast = checkHistory(events, { initial, failedCasObserved }).verdict;
        expect(fast).toBe(
          bruteForceLinearizable(events, initial, failedCasObserved)
            ? 'linearizable'
            : 'not-linearizable',
        );
      }),
      { numRuns: 400 },
    );
  });
});

interface SequentialStep {
  f: KvFunction;
  key: string;
  value: string;
  expected: string | null;
  before: number;
  after: number;
  fate: 'ok' | 'info' | 'open' | 'failed';
}

const sequentialSteps = fc.array(
  fc.record<SequentialStep>({
    f: fc.constantFrom<KvFunction>('get', 'get', 'put', 'delete', 'cas', 'append'),
    key: fc.constantFrom('a', 'b', 'c'),
    value: fc.constantFrom('v0', 'v1', 'v2', 'v3'),
    expected: fc.constantFrom(null, 'v0', 'v1', 'v2', 'v3'),
    before: fc.integer({ min: 0, max: 60 }),
    after: fc.integer({ min: 0, max: 60 }),
    fate: fc.constantFrom('ok', 'ok', 'ok', 'ok', 'info', 'open', 'failed'),
  }),
  { minLength: 1, maxLength: 40 },
);

/**
 * Runs the steps sequentially against a plain map, linearization point 10k for step k, and
 * records each as an interval around its point (one process per operation). A `failed` write
 * does not take effect; a cas fails exactly when its expected value is not there.
 */
function recordSequentialRun(steps: readonly SequentialStep[]): HistoryEvent[] {
  const store = new Map<string, Json>();
  const timed: { time: number; order: number; event: HistoryEvent }[] = [];
  steps.forEach((s, k) => {
    const current = store.get(s.key) ?? null;
    let input: Json = s.value;
    let output: Json = s.value;
    let type: 'ok' | 'fail' | 'info' =
      s.fate === 'failed' ? 'fail' : s.fate === 'ok' ? 'ok' : 'info';
    if (s.f === 'get') {
      input = null;
      output = current;
    } else if (s.f === 'cas') {
      input = [s.expected, s.value];
      output = input;
      // A completed cas reports whether it swapped; an indeterminate one still took effect.
      const swaps = same(current, s.expected);
      if (type !== 'info') type = swaps ? 'ok' : 'fail';
      if (swaps) store.set(s.key, s.value);
    } else if (type !== 'fail') {
      // Every value is a string, so append always applies; absent counts as empty.
      const appended = `${current ?? ''}${s.value}`;
      store.set(s.key, s.f === 'put' ? s.value : s.f === 'delete' ? null : appended);
      if (s.f === 'delete') input = output = null;
    }
    const point = 10 * k + 5;
    const base = { process: k, f: s.f, key: s.key };
    timed.push({
      time: point - s.before,
      order: 0,
      event: { ...base, type: 'invoke', value: input, time: 0 },
    });
    if (s.fate !== 'open') {
      timed.push({
        time: point + s.after,
        order: 1,
        event: { ...base, type, value: output, time: 0 },
      });
    }
  });
  timed.sort((x, y) => x.time - y.time || x.order - y.order);
  return timed.map(({ time, event }) => ({ ...event, time }));
}

describe('histories of sequential executions with random intervals', () => {
  it('are linearizable', () => {
    fc.assert(
      fc.property(sequentialSteps, (steps) => {
        // A cas is recorded as failed only on a real mismatch, so both readings hold.
        const events = recordSequentialRun(steps);
        expect(checkHistory(events).verdict).toBe('linearizable');
        expect(checkHistory(events, { failedCasObserved: true }).verdict).toBe('linearizable');
      }),
      { numRuns: 300 },
    );
  });

  it('are not linearizable once an ok read returns a value never written', () => {
    const withRead = fc
      .tuple(sequentialSteps, fc.nat())
      .map(([steps, pick]) => ({ events: recordSequentialRun(steps), pick }))
      .filter(({ events }) => events.some((e) => e.f === 'get' && e.type === 'ok'));
    fc.assert(
      fc.property(withRead, ({ events, pick }) => {
        const reads = events.flatMap((e, i) => (e.f === 'get' && e.type === 'ok' ? [i] : []));
        const target = reads[pick % reads.length]!;
        const corrupted = events.map((e, i) =>
          i === target ? { ...e, value: 'never written' } : e,
        );
        const result = checkHistory(corrupted);
        expect(result).toMatchObject({ verdict: 'not-linearizable', key: events[target]!.key });
      }),
      { numRuns: 300 },
    );
  });
});
