import { describe, expect, it } from 'vitest';
import { cellText, tableLines } from './table.ts';

describe('tableLines', () => {
  it('draws headers and rows in a box, columns as wide as their widest cell', () => {
    expect(
      tableLines(
        ['key', 'value'],
        [
          ['a', 'hello'],
          ['bcd', 1],
        ],
      ),
    ).toEqual([
      '+-----+-------+',
      '| KEY | VALUE |',
      '+-----+-------+',
      '| a   | hello |',
      '| bcd | 1     |',
      '+-----+-------+',
    ]);
  });

  it('keeps the box whole for a value with a newline, a tab, or a character outside the BMP', () => {
    const lines = tableLines(['v'], [['two\nlines\t'], ['😀']]);
    expect(lines).toContain('| two\\nlines\\t |');
    expect(lines).toContain('| 😀            |');
    expect(new Set(lines.filter((l) => l.startsWith('+')).map((l) => l.length)).size).toBe(1);
  });

  it('refuses a row whose cells do not match the headers', () => {
    expect(() => tableLines(['a', 'b'], [['only one']])).toThrow(/1 cells for 2 headers/);
  });

  it('escapes control characters only', () => {
    expect(cellText('a\u0000b é')).toBe('a\\u0000b é');
    expect(cellText(true)).toBe('true');
  });
});
