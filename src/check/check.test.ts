import { describe, expect, it } from 'vitest';
import { HistoryBuilder } from './builder.ts';
import { type CheckResult, checkHistory } from './check.ts';

function verdict(history: HistoryBuilder, initial: null | string = null): CheckResult['verdict'] {
  return checkHistory(history.events, { initial }).verdict;
}

const h = () => new HistoryBuilder();

describe('checkHistory on hand-written histories', () => {
  it('accepts the empty history', () => {
    expect(checkHistory([])).toEqual({ verdict: 'linearizable', keys: 0, ops: 0, dropped: 0 });
  });

  it('accepts a sequential history and rejects a stale sequential read', () => {
    const base = () => h().invoke(1, 'put', 'x', 1).ok(1).invoke(1, 'put', 'x', 2).ok(1);
    expect(verdict(base().invoke(2, 'get', 'x').ok(2, 2))).toBe('linearizable');
    expect(verdict(base().invoke(2, 'get', 'x').ok(2, 1))).toBe('not-linearizable');
  });

  it('lets concurrent reads see the old and the new value, in either order', () => {
    const history = h()
      .invoke(1, 'put', 'x', 1)
      .ok(1)
      .invoke(1, 'put', 'x', 2)
      .invoke(2, 'get', 'x')
      .invoke(3, 'get', 'x')
      .ok(2, 2)
      .ok(3, 1)
      .ok(1);
    expect(verdict(history)).toBe('linearizable');
  });

  it('rejects a read of the old value after another read saw the new one and returned', () => {
    const history = h()
      .invoke(1, 'put', 'x', 1)
      .ok(1)
      .invoke(1, 'put', 'x', 2)
      .invoke(2, 'get', 'x')
      .ok(2, 2)
      .invoke(3, 'get', 'x')
      .ok(3, 1)
      .ok(1);
    expect(verdict(history)).toBe('not-linearizable');
  });

  it('lets an indeterminate write take effect long after its invocation', () => {
    const history = h()
      .invoke(1, 'put', 'x', 'late')
      .info(1)
      .invoke(2, 'get', 'x')
      .ok(2, null)
      .invoke(2, 'put', 'x', 'other')
      .ok(2)
      .invoke(2, 'get', 'x')
      .ok(2, 'other')
      .invoke(3, 'get', 'x')
      .ok(3, 'late');
    expect(verdict(history)).toBe('linearizable');
  });

  it('lets an indeterminate write never take effect', () => {
    const history = h().invoke(1, 'put', 'x', 1).info(1).invoke(2, 'get', 'x').ok(2, null);
    expect(verdict(history)).toBe('linearizable');
  });

  it('treats an invocation the history never completes as indeterminate', () => {
    const history = h().invoke(1, 'put', 'x', 1).invoke(2, 'get', 'x').ok(2, 1);
    expect(verdict(history)).toBe('linearizable');
  });

  it('ignores a failed write: a read of its value is a violation', () => {
    const history = h().invoke(1, 'put', 'x', 1).fail(1).invoke(2, 'get', 'x').ok(2, 1);
    expect(verdict(history)).toBe('not-linearizable');
  });

  it('checks cas: success needs the expected value; failure did not happen', () => {
    const start = () => h().invoke(1, 'put', 'x', 1).ok(1);
    expect(
      verdict(start().invoke(2, 'cas', 'x', [1, 2]).ok(2).invoke(3, 'get', 'x').ok(3, 2)),
    ).toBe('linearizable');
    expect(verdict(start().invoke(2, 'cas', 'x', [5, 2]).ok(2))).toBe('not-linearizable');
    expect(
      verdict(start().invoke(2, 'cas', 'x', [5, 2]).fail(2).invoke(3, 'get', 'x').ok(3, 1)),
    ).toBe('linearizable');
    const refusedAtMatch = start().invoke(2, 'cas', 'x', [1, 2]).fail(2);
    expect(verdict(refusedAtMatch)).toBe('linearizable');
    const observed = checkHistory(refusedAtMatch.events, { failedCasObserved: true });
    expect(observed.verdict).toBe('not-linearizable');
  });

  it('ignores a failed cas that would have swapped: it did not happen', () => {
    const history = h()
      .invoke(1, 'put', 'x', 1)
      .ok(1)
      .invoke(2, 'cas', 'x', [1, 2])
      .fail(2)
      .invoke(3, 'get', 'x')
      .ok(3, 1);
    expect(verdict(history)).toBe('linearizable');
    expect(verdict(history.invoke(3, 'get', 'x').ok(3, 2))).toBe('not-linearizable');
  });

  it('reads null after a delete', () => {
    const start = () => h().invoke(1, 'put', 'x', 1).ok(1).invoke(1, 'delete', 'x').ok(1);
    expect(verdict(start().invoke(2, 'get', 'x').ok(2, null))).toBe('linearizable');
    expect(verdict(start().invoke(2, 'get', 'x').ok(2, 1))).toBe('not-linearizable');
  });

  it('checks append, with the initial value the caller gives', () => {
    const history = h()
      .invoke(1, 'append', 'x', 'a')
      .invoke(2, 'append', 'x', 'b')
      .ok(1)
      .ok(2)
      .invoke(3, 'get', 'x');
    expect(verdict(h().invoke(3, 'get', 'x').ok(3, ''), '')).toBe('linearizable');
    expect(verdict(h().invoke(3, 'get', 'x').ok(3, ''))).toBe('not-linearizable');
    expect(verdict(history.ok(3, 'ba'))).toBe('linearizable');
    expect(verdict(h().invoke(1, 'append', 'x', 'a').ok(1).invoke(3, 'get', 'x').ok(3, 'aa'))).toBe(
      'not-linearizable',
    );
  });

  it('checks keys independently and names the key that is not linearizable', () => {
    const history = h()
      .invoke(1, 'put', 'a', 1)
      .invoke(2, 'put', 'b', 1)
      .ok(1)
      .ok(2)
      .invoke(1, 'get', 'a')
      .ok(1, 1)
      .invoke(2, 'get', 'b')
      .ok(2, 2);
    const result = checkHistory(history.events);
    expect(result).toMatchObject({ verdict: 'not-linearizable', key: 'b' });
  });

  it('counts keys and operations of a linearizable history', () => {
    const history = h().invoke(1, 'put', 'a', 1).ok(1).invoke(1, 'put', 'b', 1).fail(1);
    expect(checkHistory(history.events)).toEqual({
      verdict: 'linearizable',
      keys: 1,
      ops: 1,
      dropped: 0,
    });
  });
});

describe('violation explanations', () => {
  it('name the blocked operation, its value, and the values the register could hold', () => {
    const history = h()
      .invoke(1, 'put', 'x', 'v1')
      .ok(1)
      .invoke(2, 'put', 'x', 'v2')
      .ok(2)
      .invoke(3, 'get', 'x')
      .ok(3, 'v1');
    const result = checkHistory(history.events);
    expect(result.verdict).toBe('not-linearizable');
    if (result.verdict !== 'not-linearizable') return;
    expect(result.explanation).toContain('process 3 get read "v1" (t=5..6)');
    expect(result.explanation).toContain('not linearizable by t=6');
    expect(result.explanation).toContain('places 2 operation(s)');
    expect(result.explanation).toContain('register at "v2"');
  });

  it('say when not even the first operation can be placed', () => {
    const result = checkHistory(h().invoke(1, 'get', 'x').ok(1, 3).events);
    expect(result.verdict === 'not-linearizable' && result.explanation).toMatch(
      /No operation can even be placed first: the register starts absent/,
    );
  });
});

describe('budgets', () => {
  /** Many overlapping writes then an impossible read: the search must visit every subset. */
  function hardHistory(writers: number) {
    const history = h();
    for (let p = 0; p < writers; p++) history.invoke(p, 'put', 'x', p);
    history.invoke(writers, 'get', 'x');
    for (let p = 0; p < writers; p++) history.ok(p);
    return history.ok(writers, 'never written');
  }

  it('answer unknown when the step budget runs out', () => {
    const result = checkHistory(hardHistory(20).events, { stepsMax: 5000 });
    expect(result).toEqual({ verdict: 'unknown', reason: expect.stringMatching(/step budget/) });
  });

  it('answer unknown when the clock passes the time budget', () => {
    let clock = 0;
    const now = () => (clock += 10);
    const result = checkHistory(hardHistory(20).events, { budgetMs: 1000, now });
    expect(result).toEqual({ verdict: 'unknown', reason: expect.stringMatching(/time budget/) });
  });

  it('answer unknown when the cache bound is reached', () => {
    const result = checkHistory(hardHistory(20).events, { cacheEntriesMax: 100 });
    expect(result).toEqual({
      verdict: 'unknown',
      reason: expect.stringMatching(/cacheEntriesMax/),
    });
  });

  it('still report a violation on another key when one key is unknown', () => {
    // 'y' has more operations than 'x', so it is searched after 'x' spends the budget.
    const history = hardHistory(20);
    for (let i = 0; i < 25; i++) history.invoke(99, 'put', 'y', i).ok(99);
    history.invoke(99, 'get', 'y').ok(99, 'nope');
    const result = checkHistory(history.events, { stepsMax: 5000 });
    expect(result).toMatchObject({ verdict: 'not-linearizable', key: 'y' });
  });

  it('finish a hard history within a generous budget', () => {
    expect(checkHistory(hardHistory(10).events).verdict).toBe('not-linearizable');
  });
});
