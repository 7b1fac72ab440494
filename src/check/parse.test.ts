import { describe, expect, it } from 'vitest';
import { readEdn } from './edn.ts';
import { HistoryParseError } from './operations.ts';
import { parseEdn, parseJepsen, parseJsonl } from './parse.ts';

function jsonl(...records: object[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n');
}

const put = { process: 1, f: 'put', key: 'x', value: 1, time: 1 };

/** The parse error a parser throws on `text`, so tests can look at its line and message. */
function parseError(parse: (text: string) => unknown, text: string): HistoryParseError {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof HistoryParseError) return err;
    throw err;
  }
  throw new Error('expected a HistoryParseError');
}

describe('parseJsonl', () => {
  it('reads events, skipping blank lines, and defaults a missing value to null', () => {
    const text = `${jsonl({ ...put, type: 'invoke' })}\n\n${jsonl(
      { ...put, type: 'ok', time: 2 },
      { process: 2, type: 'invoke', f: 'get', key: 'x', time: 3 },
    )}`;
    const events = parseJsonl(text);
    expect(events).toHaveLength(3);
    expect(events[2]).toEqual({
      process: 2,
      type: 'invoke',
      f: 'get',
      key: 'x',
      value: null,
      time: 3,
    });
  });

  it.each([
    ['not JSON', '{"process":', /not JSON/],
    ['an array', '[1,2]', /JSON object/],
    [
      'a fractional process',
      jsonl({ ...put, type: 'invoke', process: 1.5 }),
      /process must be an integer/,
    ],
    ['an unknown type', jsonl({ ...put, type: 'done' }), /type must be/],
    ['an unknown f', jsonl({ ...put, type: 'invoke', f: 'incr' }), /f must be/],
    ['a numeric key', jsonl({ ...put, type: 'invoke', key: 3 }), /key must be a string/],
    [
      'a missing time',
      jsonl({ process: 1, type: 'invoke', f: 'get', key: 'x' }),
      /time must be a number/,
    ],
  ])('rejects %s on line 1', (_what, text, message) => {
    const err = parseError(parseJsonl, text);
    expect(err.line).toBe(1);
    expect(err.message).toMatch(message);
  });

  it('names the line of a completion with no pending invoke', () => {
    const err = parseError(
      parseJsonl,
      jsonl({ ...put, type: 'invoke' }, { ...put, type: 'ok' }, { ...put, type: 'ok' }),
    );
    expect(err.line).toBe(3);
    expect(err.detail).toMatch(/no pending invoke/);
  });

  it('names the line of a second invoke while one is pending', () => {
    const err = parseError(
      parseJsonl,
      `\n${jsonl({ ...put, type: 'invoke' }, { ...put, type: 'invoke' })}`,
    );
    expect(err.line).toBe(3);
    expect(err.detail).toMatch(/pending/);
  });

  it('rejects a completion whose f differs from the invocation', () => {
    const err = parseError(
      parseJsonl,
      jsonl({ ...put, type: 'invoke' }, { ...put, type: 'ok', f: 'get' }),
    );
    expect(err.line).toBe(2);
    expect(err.detail).toMatch(/completes get/);
  });

  it('rejects a cas whose value is not [expected, new]', () => {
    const err = parseError(parseJsonl, jsonl({ ...put, f: 'cas', type: 'invoke', value: [1] }));
    expect(err.detail).toMatch(/cas value must be \[expected, new\]/);
  });

  it('rejects an invoke by a process retired by an info', () => {
    const text = jsonl(
      { ...put, type: 'invoke' },
      { ...put, type: 'info' },
      { ...put, type: 'invoke' },
    );
    expect(parseError(parseJsonl, text).line).toBe(3);
  });
});

describe('parseJepsen', () => {
  const log = [
    'INFO  jepsen.util - 0\t:invoke\t:cas\t[3 0]',
    'INFO  jepsen.util - 1   :invoke   :read   nil',
    'INFO  jepsen.util - 1\t:ok\t:read\t3',
    'INFO  jepsen.util - 0\t:info\t:cas\t:timed-out',
  ].join('\n');

  it('maps read/write to get/put on the key "" with the line as time', () => {
    const events = parseJepsen(log);
    expect(events.map((e) => [e.process, e.type, e.f, e.key, e.value, e.time])).toEqual([
      [0, 'invoke', 'cas', '', [3, 0], 1],
      [1, 'invoke', 'get', '', null, 2],
      [1, 'ok', 'get', '', 3, 3],
      [0, 'info', 'cas', '', null, 4],
    ]);
  });

  it('names a malformed line', () => {
    const err = parseError(parseJepsen, `${log}\nINFO  jepsen.util - 2\t:invoke\t:write\tfour`);
    expect(err.line).toBe(5);
    expect(err.detail).toMatch(/unsupported value 'four'/);
    expect(parseError(parseJepsen, 'WARN something else').detail).toMatch(/not a Jepsen log line/);
  });
});

describe('parseEdn', () => {
  it('reads porcupine kv lines', () => {
    const events = parseEdn(
      '{:process 3, :type :invoke, :f :append, :key "4", :value "x 3 7 y"}\n' +
        '{:process 3, :type :ok, :f :append, :key "4", :value "x 3 7 y"}\n' +
        '{:process 1, :type :invoke, :f :get, :key 9, :value nil}',
    );
    expect(events[0]).toEqual({
      process: 3,
      type: 'invoke',
      f: 'append',
      key: '4',
      value: 'x 3 7 y',
      time: 1,
    });
    expect(events[2]!.key).toBe('9');
  });

  it('names a malformed line', () => {
    const err = parseError(
      parseEdn,
      '{:process 3, :type :invoke, :f :get, :key "4", :value nil}\n{:process 3, :type',
    );
    expect(err.line).toBe(2);
    const unknown = parseError(
      parseEdn,
      '{:process 3, :type :invoke, :f :incr, :key "4", :value 1}',
    );
    expect(unknown.detail).toMatch(/unknown :f/);
  });
});

describe('readEdn', () => {
  it('reads nested values, escapes and numbers', () => {
    const value = readEdn('{:a [1 -2 3.5 nil true], :b "q\\"t\\n"}');
    expect(value).toBeInstanceOf(Map);
    const map = value as Map<string, unknown>;
    expect(map.get('a')).toEqual([1, -2, 3.5, null, true]);
    expect(map.get('b')).toBe('q"t\n');
  });

  it('rejects trailing text and unterminated strings', () => {
    expect(() => readEdn('{:a 1} 2')).toThrow(/trailing/);
    expect(() => readEdn('"abc')).toThrow(/unterminated/);
  });
});
