import { describe, expect, it } from 'vitest';
import { kindSet } from './kinds.ts';

type Shape = { readonly type: 'circle' } | { readonly type: 'square' };

describe('kindSet', () => {
  it('holds every tag of the union', () => {
    const kinds = kindSet<Shape>()({ circle: true, square: true });
    expect([...kinds].sort()).toEqual(['circle', 'square']);
  });

  it('refuses at compile time a record that misses a tag or adds one', () => {
    // @ts-expect-error 'square' is missing
    const missing = kindSet<Shape>()({ circle: true });
    // @ts-expect-error 'triangle' is not a member of the union
    const extra = kindSet<Shape>()({ circle: true, square: true, triangle: true });
    expect(missing.size + extra.size).toBe(4);
  });
});
