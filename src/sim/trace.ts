import type { HistoryEvent, Json } from '../check/history.ts';

/**
 * The simulator's trace: one JSON object per line, keys always in the order written
 * below, so the same seed gives the same bytes. The browser visualizer replays it.
 * Endpoints are strings: `n3` is node 3, `c2` is client 2. `t` is global simulated time in
 * ms, rounded to the microsecond. Every record has `t` and `type`:
 *
 * - `start`    {protocol, seed, nodes: NodeId[], clients: ClientId[], options}: the first line.
 * - `send`     {id, from, to, msg}: a message entered the network (node or client link).
 * - `dup`      {id}: the network will deliver message `id` twice.
 * - `deliver`  {id, from, to}: message `id` reached a live, running endpoint.
 * - `drop`     {id, from, to, reason}: lost; reason is partition | cut | loss | down |
 *              pause-overflow.
 * - `persist`  {node, items}: the node's fsync completed; `items` entries are now durable.
 * - `torn`     {node, kept, of}: the node crashed mid-fsync; the first `kept` of `of` items
 *              reached the disk.
 * - `apply`    {node, item}: the node delivered `item` (committed entry, chosen value...).
 * - `event`    {node, event}: an observer event of the core (role change, election...).
 * - `fault`    {action}: a nemesis or scenario action (see FaultAction), or `protocol` with
 *              the plugin's description.
 * - `history`  {process, event, f, key, value}: a client invoke or completion (event is
 *              invoke | ok | fail | info), exactly as in the history file.
 * - `phase`    {phase}: `liveness` when faults stop and the cluster is healed.
 * - `end`      {verdict, message}: the run's outcome (pass | violation | unknown).
 */
export type TraceSink = (line: string) => void;

const roundTime = (t: number) => Math.round(t * 1000) / 1000;

/** Writes trace records; the simulator only calls it when tracing is on. */
export class Tracer {
  constructor(private readonly sink: TraceSink) {}

  private write(t: number, type: string, body: Record<string, Json>): void {
    this.sink(JSON.stringify({ t: roundTime(t), type, ...body }));
  }

  start(protocol: string, seed: number, nodes: number[], clients: number[], options: Json): void {
    this.write(0, 'start', { protocol, seed, nodes, clients, options });
  }

  send(t: number, id: number, from: string, to: string, msg: Json): void {
    this.write(t, 'send', { id, from, to, msg });
  }

  dup(t: number, id: number): void {
    this.write(t, 'dup', { id });
  }

  deliver(t: number, id: number, from: string, to: string): void {
    this.write(t, 'deliver', { id, from, to });
  }

  drop(t: number, id: number, from: string, to: string, reason: string): void {
    this.write(t, 'drop', { id, from, to, reason });
  }

  persist(t: number, node: number, items: number): void {
    this.write(t, 'persist', { node, items });
  }

  torn(t: number, node: number, kept: number, of: number): void {
    this.write(t, 'torn', { node, kept, of });
  }

  apply(t: number, node: number, item: Json): void {
    this.write(t, 'apply', { node, item });
  }

  event(t: number, node: number, event: Json): void {
    this.write(t, 'event', { node, event });
  }

  fault(t: number, action: Json): void {
    this.write(t, 'fault', { action });
  }

  history(e: HistoryEvent): void {
    this.write(e.time, 'history', {
      process: e.process,
      event: e.type,
      f: e.f,
      key: e.key,
      value: e.value,
    });
  }

  phase(t: number, phase: string): void {
    this.write(t, 'phase', { phase });
  }

  end(t: number, verdict: string, message: string): void {
    this.write(t, 'end', { verdict, message });
  }
}

/** Turns a protocol value into JSON for the trace: Maps, Sets, bigints and typed arrays too. */
export function toJson(value: unknown): Json {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString();
    case 'object':
      return objectToJson(value);
    default:
      return String(value);
  }
}

function objectToJson(value: object): Json {
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Map) return [...value].map(([k, v]) => [toJson(k), toJson(v)]);
  if (value instanceof Set) return [...value].map(toJson);
  if (ArrayBuffer.isView(value)) {
    return Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  }
  const out: { [key: string]: Json } = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJson(v);
  return out;
}
