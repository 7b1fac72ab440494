import { describe, expect, it } from 'vitest';
import { HistoryBuilder } from './builder.ts';
import { ABSENT, canonicalJson, compileKey, step, takesPart, ValueTable } from './model.ts';
import { pairOperations } from './operations.ts';

/** Compiles one key's history and returns a stepper over its operations by index. */
function stepper(build: (h: HistoryBuilder) => HistoryBuilder, initial: null | string = null) {
  const ops = pairOperations(build(new HistoryBuilder()).events).filter((op) =>
    takesPart(op, true),
  );
  const model = compileKey('k', ops, initial);
  const id = (value: null | number | string | number[]) => model.table.intern(value);
  return { model, id, apply: (op: number, state: number) => step(model, op, state) };
}

describe('canonicalJson', () => {
  it('gives equal text to equal values whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: [2, { d: null, c: 'x' }] })).toBe(
      canonicalJson({ a: [2, { c: 'x', d: null }], b: 1 }),
    );
    expect(canonicalJson(1)).not.toBe(canonicalJson('1'));
  });
});

describe('ValueTable', () => {
  it('interns null as absent and equal values to one id', () => {
    const table = new ValueTable();
    expect(table.intern(null)).toBe(ABSENT);
    expect(table.intern([1, 2])).toBe(table.intern([1, 2]));
    expect(table.intern([1, 2])).not.toBe(table.intern([2, 1]));
    expect(table.value(table.intern({ a: 1 }))).toEqual({ a: 1 });
  });

  it('appends onto strings and absent, not onto other values', () => {
    const table = new ValueTable();
    const suffix = table.intern('y');
    expect(table.value(table.append(ABSENT, suffix))).toBe('y');
    expect(table.value(table.append(table.intern('x'), suffix))).toBe('xy');
    expect(table.append(table.intern(7), suffix)).toBe(-1);
  });
});

describe('register model steps', () => {
  it('an ok get is legal only in the state it read', () => {
    const { id, apply } = stepper((h) => h.invoke(1, 'get', 'k').ok(1, 5));
    expect(apply(0, id(5))).toBe(id(5));
    expect(apply(0, id(4))).toBe(-1);
    expect(apply(0, ABSENT)).toBe(-1);
  });

  it('an ok get of null reads an absent key', () => {
    const { apply } = stepper((h) => h.invoke(1, 'get', 'k').ok(1, null));
    expect(apply(0, ABSENT)).toBe(ABSENT);
  });

  it('put and delete overwrite whatever is there', () => {
    const { id, apply } = stepper((h) =>
      h.invoke(1, 'put', 'k', 3).ok(1).invoke(1, 'delete', 'k').ok(1),
    );
    expect(apply(0, id(9))).toBe(id(3));
    expect(apply(1, id(3))).toBe(ABSENT);
  });

  it('a successful cas needs the expected value; a failed one needs any other', () => {
    const { id, apply } = stepper((h) =>
      h.invoke(1, 'cas', 'k', [1, 2]).ok(1).invoke(1, 'cas', 'k', [1, 2]).fail(1),
    );
    expect(apply(0, id(1))).toBe(id(2));
    expect(apply(0, id(3))).toBe(-1);
    expect(apply(1, id(1))).toBe(-1);
    expect(apply(1, id(3))).toBe(id(3));
  });

  it('an indeterminate cas is always legal and swaps only on a match', () => {
    const { id, apply } = stepper((h) => h.invoke(1, 'cas', 'k', [1, 2]).info(1));
    expect(apply(0, id(1))).toBe(id(2));
    expect(apply(0, id(7))).toBe(id(7));
  });

  it('append concatenates, absent counting as empty; an ok append onto a number is illegal', () => {
    const { id, apply } = stepper((h) =>
      h.invoke(1, 'append', 'k', 'b').ok(1).invoke(2, 'append', 'k', 'c').info(2),
    );
    expect(apply(0, id('a'))).toBe(id('ab'));
    expect(apply(0, ABSENT)).toBe(id('b'));
    expect(apply(0, id(1))).toBe(-1);
    expect(apply(1, id(1))).toBe(id(1));
  });

  it('the initial value is interned as the starting state', () => {
    const { model, id } = stepper((h) => h.invoke(1, 'get', 'k').ok(1, ''), '');
    expect(model.initial).toBe(id(''));
  });
});

describe('takesPart', () => {
  it('drops failed operations and indeterminate reads; failed cas only if observed', () => {
    const ops = pairOperations(
      new HistoryBuilder()
        .invoke(1, 'put', 'k', 1)
        .fail(1)
        .invoke(2, 'get', 'k')
        .info(2)
        .invoke(3, 'cas', 'k', [1, 2])
        .fail(3)
        .invoke(4, 'put', 'k', 2)
        .info(4).events,
    );
    expect(ops.map((op) => takesPart(op, true))).toEqual([false, false, true, true]);
    expect(ops.map((op) => takesPart(op, false))).toEqual([false, false, false, true]);
  });
});
