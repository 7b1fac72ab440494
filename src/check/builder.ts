import { assert } from '../kernel/index.ts';
import type { EventType, HistoryEvent, Json, KvFunction } from './history.ts';

/**
 * Writes histories by hand, for tests and small workloads: each call appends one event at the
 * next time step, and completions repeat the invocation's `f` and key.
 *
 *     new HistoryBuilder().invoke(1, 'put', 'x', 1).invoke(2, 'get', 'x').ok(1).ok(2, 1).events
 */
export class HistoryBuilder {
  readonly events: HistoryEvent[] = [];
  private readonly open = new Map<number, { f: KvFunction; key: string; value: Json }>();

  invoke(client: number, f: KvFunction, key: string, value: Json = null): this {
    assert(!this.open.has(client), `client ${client} has one operation in flight`);
    this.open.set(client, { f, key, value });
    return this.push(client, 'invoke', f, key, value);
  }

  /** Completes `client`'s operation; `value` defaults to the invocation's (null for get). */
  ok(client: number, value?: Json): this {
    return this.complete(client, 'ok', value);
  }

  fail(client: number, value?: Json): this {
    return this.complete(client, 'fail', value);
  }

  info(client: number, value?: Json): this {
    return this.complete(client, 'info', value);
  }

  private complete(client: number, type: EventType, value: Json | undefined): this {
    const invoked = this.open.get(client);
    assert(invoked !== undefined, `client ${client} has an operation to complete`);
    this.open.delete(client);
    const echoed = invoked.f === 'get' ? null : invoked.value;
    return this.push(client, type, invoked.f, invoked.key, value === undefined ? echoed : value);
  }

  private push(client: number, type: EventType, f: KvFunction, key: string, value: Json): this {
    this.events.push({ process: client, type, f, key, value, time: this.events.length + 1 });
    return this;
  }
}
