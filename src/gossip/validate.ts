import type { GossipConfig } from './config.ts';
import type { DropReason, GossipMsg, MemberRecord, UserEvent } from './types.ts';
import { gossipMsgTypes } from './types.ts';
import { utf8Bytes } from './wire.ts';

/**
 * Structural checks of a message from the network. The datagram codec already rejects bad
 * bytes, but a host may hand the core anything (a stream message decoded by msgpack, a
 * buggy peer), so the core checks again and drops with a typed reason rather than crash.
 */
type Limits = Pick<GossipConfig, 'membersMax' | 'tagsBytesMax' | 'eventBytesMax'>;

const statuses = new Set(['alive', 'suspect', 'dead', 'left']);
const types = new Set<string>(gossipMsgTypes);

function u32(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}

function id(v: unknown): boolean {
  return u32(v) && (v as number) >= 1;
}

function obj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function eventProblem(e: unknown, l: Limits): DropReason | undefined {
  if (!obj(e) || !id(e.origin) || !id(e.seq)) return 'malformed';
  if (typeof e.name !== 'string' || typeof e.payload !== 'string') return 'malformed';
  const ev = e as unknown as UserEvent;
  if (utf8Bytes(ev.name) > 255) return 'malformed';
  return utf8Bytes(ev.name) + utf8Bytes(ev.payload) > l.eventBytesMax ? 'too-large' : undefined;
}

function rumourProblem(r: unknown, l: Limits): DropReason | undefined {
  if (!obj(r)) return 'malformed';
  switch (r.kind) {
    case 'alive':
      if (!id(r.id) || !u32(r.incarnation) || typeof r.tags !== 'string') return 'malformed';
      return utf8Bytes(r.tags) > l.tagsBytesMax ? 'too-large' : undefined;
    case 'suspect':
    case 'dead':
      return id(r.id) && u32(r.incarnation) && id(r.from) ? undefined : 'malformed';
    case 'leave':
      return id(r.id) && u32(r.incarnation) && u32(r.ltime) ? undefined : 'malformed';
    case 'event':
      return eventProblem(r.event, l);
    default:
      return 'malformed';
  }
}

function listProblem<T>(
  v: unknown,
  max: number,
  each: (x: unknown) => DropReason | undefined,
): DropReason | undefined {
  if (!Array.isArray(v)) return 'malformed';
  if (v.length > max) return 'too-large';
  for (const x of v as T[]) {
    const p = each(x);
    if (p !== undefined) return p;
  }
  return undefined;
}

function memberProblem(m: unknown, l: Limits): DropReason | undefined {
  if (!obj(m) || !id(m.id) || !u32(m.incarnation) || typeof m.tags !== 'string') return 'malformed';
  if (!statuses.has(m.status as string)) return 'malformed';
  return utf8Bytes((m as unknown as MemberRecord).tags) > l.tagsBytesMax ? 'too-large' : undefined;
}

const head = (h: unknown) => (obj(h) && id(h.origin) && u32(h.seq) ? undefined : 'malformed');

function digestProblem(d: unknown): DropReason | undefined {
  if (d === undefined) return undefined;
  if (!obj(d) || !u32(d.hash) || !u32(d.members)) return 'malformed';
  const entry = (e: unknown) =>
    obj(e) && id(e.id) && u32(e.incarnation) && typeof e.gone === 'boolean'
      ? undefined
      : 'malformed';
  return listProblem(d.entries, 255, entry) ?? listProblem(d.heads, 255, head);
}

function rumoursProblem(v: unknown, l: Limits): DropReason | undefined {
  if (!Array.isArray(v)) return 'malformed';
  if (v.length > 255) return 'too-large';
  for (const r of v) {
    const p = rumourProblem(r, l);
    if (p !== undefined) return p;
  }
  return undefined;
}

function eventsProblem(v: unknown, l: Limits): DropReason | undefined {
  if (!Array.isArray(v)) return 'malformed';
  for (const e of v) {
    const p = eventProblem(e, l);
    if (p !== undefined) return p;
  }
  return undefined;
}

function retainedHead(h: unknown): DropReason | undefined {
  return head(h) ?? (obj(h) && u32(h.oldest) ? undefined : 'malformed');
}

function pushPullProblem(
  m: Extract<GossipMsg, { type: 'push-pull' }>,
  l: Limits,
): DropReason | undefined {
  if (typeof m.reply !== 'boolean' || typeof m.join !== 'boolean') return 'malformed';
  return (
    listProblem(m.members, l.membersMax, (x) => memberProblem(x, l)) ??
    listProblem(m.heads, l.membersMax, retainedHead) ??
    eventsProblem(m.events, l)
  );
}

/** Why `msg` must be dropped, or undefined when it is well formed and within the limits. */
export function msgProblem(msg: unknown, l: Limits): DropReason | undefined {
  if (!obj(msg) || typeof msg.type !== 'string' || !types.has(msg.type)) return 'malformed';
  const m = msg as unknown as GossipMsg;
  switch (m.type) {
    case 'ping':
    case 'ping-req':
      return u32(m.seq) && id(m.target) ? rumoursProblem(m.rumours, l) : 'malformed';
    case 'ack':
      return u32(m.seq) ? rumoursProblem(m.rumours, l) : 'malformed';
    case 'nack':
      return u32(m.seq) ? undefined : 'malformed';
    case 'gossip':
      return rumoursProblem(m.rumours, l) ?? digestProblem(m.digest);
    case 'seen':
      return listProblem(m.events, 255, head);
    case 'push-pull':
      return pushPullProblem(m, l);
    case 'events':
      return eventsProblem(m.events, l);
    default:
      return 'malformed';
  }
}
