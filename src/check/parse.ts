import { EdnError, type EdnMap, Keyword, readEdn } from './edn.ts';
import type { EventType, HistoryEvent, Json, KvFunction } from './history.ts';
import {
  HistoryParseError,
  isEventType,
  isKvFunction,
  pairOperations,
  show,
} from './operations.ts';

/**
 * Parsers for the three history formats. Each returns events in line order, validated field
 * by field and structurally (see `pairOperations`), or throws `HistoryParseError` naming the
 * 1-based line. Blank lines are skipped. Formats without timestamps use the line number as
 * the time, so explanations point at lines.
 */

interface Numbered {
  readonly events: HistoryEvent[];
  readonly lines: number[];
}

function eachLine(text: string, parse: (line: string, lineNumber: number) => HistoryEvent | null) {
  const out: Numbered = { events: [], lines: [] };
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    const event = parse(line, index + 1);
    if (event === null) return;
    out.events.push(event);
    out.lines.push(index + 1);
  });
  pairOperations(out.events, (i) => out.lines[i]!);
  return out.events;
}

function asJson(value: unknown, line: number, field: string): Json {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
  } else if (Array.isArray(value)) {
    return value.map((item, i) => asJson(item, line, `${field}[${i}]`));
  } else if (typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) out[k] = asJson(v, line, `${field}.${k}`);
    return out;
  }
  throw new HistoryParseError(line, `${field} is not a JSON value: ${show(value)}`);
}

/**
 * Parses JSON Lines histories, one object a line:
 * `{"process":int,"type":"invoke"|"ok"|"fail"|"info","f":"get"|"put"|"delete"|"cas"|"append",
 * "key":string,"value":any,"time":number}`. A missing `value` is null.
 */
export function parseJsonl(text: string): HistoryEvent[] {
  return eachLine(text, (line, n) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      throw new HistoryParseError(n, `not JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new HistoryParseError(n, 'each line must be a JSON object');
    }
    const record = parsed as Record<string, unknown>;
    const { type, f, key, time } = record;
    const client = record.process;
    if (typeof client !== 'number' || !Number.isSafeInteger(client)) {
      throw new HistoryParseError(n, `process must be an integer, got ${show(client)}`);
    }
    if (!isEventType(type)) {
      throw new HistoryParseError(n, `type must be invoke, ok, fail or info, got ${show(type)}`);
    }
    if (!isKvFunction(f)) {
      throw new HistoryParseError(n, `f must be get, put, delete, cas or append, got ${show(f)}`);
    }
    if (typeof key !== 'string')
      throw new HistoryParseError(n, `key must be a string, got ${show(key)}`);
    if (typeof time !== 'number')
      throw new HistoryParseError(n, `time must be a number, got ${show(time)}`);
    return { process: client, type, f, key, value: asJson(record.value ?? null, n, 'value'), time };
  });
}

const jepsenLine = /^INFO\s+jepsen\.util\s+-\s+(\S+)\s+:(\S+)\s+:(\S+)(?:\s+(.*))?$/;
const jepsenFunctions: Record<string, KvFunction> = { read: 'get', write: 'put', cas: 'cas' };

function jepsenValue(raw: string, line: number): Json {
  const text = raw.trim();
  if (text === 'nil' || text === ':timed-out') return null;
  if (/^-?\d+$/.test(text)) return Number(text);
  const pair = /^\[\s*(nil|-?\d+)\s+(nil|-?\d+)\s*\]$/.exec(text);
  if (pair !== null) return [jepsenValue(pair[1]!, line), jepsenValue(pair[2]!, line)];
  throw new HistoryParseError(line, `unsupported value '${text}'`);
}

/**
 * Parses Jepsen's etcd register logs (`INFO jepsen.util - <process> :<type> :<f> <value>`),
 * the format of the histories in porcupine's `test_data/jepsen`. There is one register: the
 * key is "". `:read`/`:write` become get/put; a `:timed-out` value is unknown (null).
 */
export function parseJepsen(text: string): HistoryEvent[] {
  return eachLine(text, (line, n) => {
    const match = jepsenLine.exec(line);
    if (match === null) throw new HistoryParseError(n, `not a Jepsen log line: ${show(line)}`);
    const [, processText, type, fName, valueText] = match;
    if (!/^\d+$/.test(processText!)) {
      throw new HistoryParseError(n, `process must be an integer, got '${processText}'`);
    }
    if (!isEventType(type)) throw new HistoryParseError(n, `unknown type :${type}`);
    const f = jepsenFunctions[fName!];
    if (f === undefined) throw new HistoryParseError(n, `unknown operation :${fName}`);
    const value = jepsenValue(valueText ?? 'nil', n);
    return { process: Number(processText), type, f, key: '', value, time: n };
  });
}

const ednFunctions: Record<string, KvFunction> = {
  get: 'get',
  read: 'get',
  put: 'put',
  write: 'put',
  delete: 'delete',
  cas: 'cas',
  append: 'append',
};

function ednJson(value: unknown, line: number): Json {
  if (value instanceof Keyword) {
    throw new HistoryParseError(line, `keyword :${value.name} is not a value`);
  }
  if (Array.isArray(value)) return value.map((item) => ednJson(item, line));
  if (value instanceof Map) throw new HistoryParseError(line, 'map values are not supported');
  return asJson(value, line, 'value');
}

function ednKeyword(map: EdnMap, field: string, line: number): string {
  const value = map.get(field);
  if (!(value instanceof Keyword)) {
    throw new HistoryParseError(line, `:${field} must be a keyword`);
  }
  return value.name;
}

/**
 * Parses Jepsen EDN histories, one map a line:
 * `{:process 3, :type :invoke, :f :append, :key "4", :value "x 3 7 y"}`. `:read`/`:write`
 * are accepted for get/put; a numeric key becomes its decimal text; `:time` is optional
 * (default: the line number).
 */
export function parseEdn(text: string): HistoryEvent[] {
  return eachLine(text, (line, n) => {
    let map: EdnMap;
    try {
      const value = readEdn(line);
      if (!(value instanceof Map)) throw new EdnError('each line must be an EDN map');
      map = value;
    } catch (err) {
      if (err instanceof EdnError) throw new HistoryParseError(n, err.message);
      throw err;
    }
    const client = map.get('process');
    if (typeof client !== 'number' || !Number.isSafeInteger(client)) {
      throw new HistoryParseError(n, ':process must be an integer');
    }
    const type = ednKeyword(map, 'type', n);
    if (!isEventType(type)) throw new HistoryParseError(n, `unknown :type :${type}`);
    const f = ednFunctions[ednKeyword(map, 'f', n)];
    if (f === undefined) throw new HistoryParseError(n, `unknown :f :${map.get('f')}`);
    const key = map.get('key');
    if (typeof key !== 'string' && typeof key !== 'number') {
      throw new HistoryParseError(n, ':key must be a string or a number');
    }
    const time = map.get('time') ?? n;
    if (typeof time !== 'number') throw new HistoryParseError(n, ':time must be a number');
    const value = ednJson(map.get('value') ?? null, n);
    return { process: client, type: type as EventType, f, key: String(key), value, time };
  });
}
