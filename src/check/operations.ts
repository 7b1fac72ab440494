import { assert } from '../kernel/index.ts';
import type { EventType, HistoryEvent, Json, KvFunction } from './history.ts';

/**
 * A history that breaks the format: a bad field, or events that do not pair up into
 * operations. `line` is 1-based: the line of the file for the parsers, the position in the
 * event array for `checkHistory`.
 */
export class HistoryParseError extends Error {
  override readonly name = 'HistoryParseError';
  readonly line: number;
  readonly detail: string;

  constructor(line: number, detail: string) {
    super(`line ${line}: ${detail}`);
    this.line = line;
    this.detail = detail;
  }
}

/** How an operation ended. A `fail`ed `cas` stays: it observed a value other than `expected`. */
export type Outcome = 'ok' | 'fail' | 'info';

/** An invocation paired with its completion. */
export interface Operation {
  /** Position in the array `pairOperations` returns: operations in invocation order. */
  readonly id: number;
  readonly process: number;
  readonly f: KvFunction;
  readonly key: string;
  /** The invocation's value: the value written, `[expected, new]` for cas, null for get. */
  readonly input: Json;
  /** The completion's value: what an ok get read; null when there is no completion. */
  readonly output: Json;
  /** `info` also covers an invocation the history never completes. */
  readonly outcome: Outcome;
  /** Index of the invoke event in the history. */
  readonly callIndex: number;
  /** Index of the completion event, or +Infinity: an `info` operation stays open to the end. */
  readonly returnIndex: number;
  readonly callTime: number;
  readonly returnTime: number;
}

const eventTypes: ReadonlySet<string> = new Set<EventType>(['invoke', 'ok', 'fail', 'info']);
const kvFunctions: ReadonlySet<string> = new Set<KvFunction>([
  'get',
  'put',
  'delete',
  'cas',
  'append',
]);

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && eventTypes.has(value);
}

export function isKvFunction(value: unknown): value is KvFunction {
  return typeof value === 'string' && kvFunctions.has(value);
}

interface Pending {
  readonly id: number;
  readonly event: HistoryEvent;
  readonly index: number;
}

/** Checks the fields of one event; callers that build events from untyped input rely on it. */
function checkFields(event: HistoryEvent, line: number): void {
  const fail = (why: string) => {
    throw new HistoryParseError(line, why);
  };
  if (!Number.isSafeInteger(event.process)) fail(`process must be an integer`);
  if (!isEventType(event.type)) fail(`type must be invoke, ok, fail or info`);
  if (!isKvFunction(event.f)) fail(`f must be get, put, delete, cas or append`);
  if (typeof event.key !== 'string') fail(`key must be a string`);
  if (typeof event.time !== 'number' || Number.isNaN(event.time)) fail(`time must be a number`);
}

function checkInvokeValue(event: HistoryEvent, line: number): void {
  if (event.f === 'cas' && !(Array.isArray(event.value) && event.value.length === 2)) {
    throw new HistoryParseError(
      line,
      `cas value must be [expected, new], got ${show(event.value)}`,
    );
  }
  if (event.f === 'append' && typeof event.value !== 'string') {
    throw new HistoryParseError(line, `append value must be a string, got ${show(event.value)}`);
  }
}

function checkCompletion(event: HistoryEvent, invoke: HistoryEvent, line: number): void {
  if (event.f !== invoke.f || event.key !== invoke.key) {
    throw new HistoryParseError(
      line,
      `process ${event.process} completes ${event.f} ${show(event.key)} but invoked ` +
        `${invoke.f} ${show(invoke.key)}`,
    );
  }
  if (event.f === 'cas' && event.value !== null) {
    if (!(Array.isArray(event.value) && event.value.length === 2)) {
      throw new HistoryParseError(
        line,
        `cas value must be [expected, new] or null, got ${show(event.value)}`,
      );
    }
  }
}

/**
 * Pairs each invocation with its process's next event and validates the structure: a
 * completion needs a pending invocation of the same process, `f` and key; a process has one
 * operation in flight and never invokes again after an `info`. Invocations left open at the
 * end become `info`. Throws `HistoryParseError` naming `lineOf(index)`.
 */
export function pairOperations(
  events: readonly HistoryEvent[],
  lineOf: (index: number) => number = (index) => index + 1,
): Operation[] {
  const pending = new Map<number, Pending>();
  const retired = new Set<number>();
  const built: Operation[] = [];
  events.forEach((event, index) => {
    const line = lineOf(index);
    checkFields(event, line);
    const open = pending.get(event.process);
    if (event.type === 'invoke') {
      if (open !== undefined) {
        throw new HistoryParseError(
          line,
          `process ${event.process} invokes while its ${open.event.f} from line ` +
            `${lineOf(open.index)} is pending`,
        );
      }
      if (retired.has(event.process)) {
        throw new HistoryParseError(line, `process ${event.process} invokes again after an info`);
      }
      checkInvokeValue(event, line);
      pending.set(event.process, { id: built.length, event, index });
      built.push(openOperation(built.length, event, index));
      return;
    }
    if (open === undefined) {
      throw new HistoryParseError(
        line,
        `${event.type} from process ${event.process} with no pending invoke`,
      );
    }
    checkCompletion(event, open.event, line);
    pending.delete(event.process);
    if (event.type === 'info') {
      retired.add(event.process);
      return;
    }
    built[open.id] = {
      ...openOperation(open.id, open.event, open.index),
      output: event.type === 'ok' ? event.value : null,
      outcome: event.type,
      returnIndex: index,
      returnTime: event.time,
    };
  });
  return built;
}

function openOperation(id: number, invoke: HistoryEvent, index: number): Operation {
  assert(invoke.type === 'invoke', 'an operation opens with its invocation');
  return {
    id,
    process: invoke.process,
    f: invoke.f,
    key: invoke.key,
    input: invoke.value,
    output: null,
    outcome: 'info',
    callIndex: index,
    returnIndex: Number.POSITIVE_INFINITY,
    callTime: invoke.time,
    returnTime: Number.POSITIVE_INFINITY,
  };
}

/** A short, bounded rendering of a value for messages. */
export function show(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
