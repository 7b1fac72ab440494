import { isNodeId } from '../kernel/ids.ts';
import { DATAGRAM_HEADER_BYTES } from './config.ts';
import { itemBytes } from './flow.ts';
import type {
  Commit,
  CommitEntry,
  DropReason,
  Item,
  Join,
  Mcast,
  Origin,
  Probe,
  Release,
  RingId,
  Token,
  TotemMsg,
} from './types.ts';

/**
 * Checking what arrives: a transport hands the core whatever decoded from a datagram, and a
 * malformed message is dropped and counted, never trusted. `checkMessage` returns the
 * message typed, or why it was refused: 'malformed' for a wrong shape, 'bad-token' for a
 * token whose fields contradict each other (too many retransmit entries, aru above seq).
 */
export interface WireLimits {
  readonly retransmitEntriesMax: number;
  readonly membersMax: number;
  readonly mtuBytes: number;
}

type Checked =
  | { readonly ok: true; readonly msg: TotemMsg }
  | { readonly ok: false; readonly reason: DropReason };

const bad: Checked = { ok: false, reason: 'malformed' };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isRing(v: unknown): v is RingId {
  return isRecord(v) && isCount(v.seq) && (v.rep === 0 || isNodeId(v.rep));
}

function isIdList(v: unknown, max: number): v is NodeId[] {
  return Array.isArray(v) && v.length <= max && v.every(isNodeId);
}

type NodeId = number;

function isOrigin(v: unknown): v is Origin {
  return isRecord(v) && isNodeId(v.node) && isCount(v.boot) && isCount(v.n) && v.n >= 1;
}

function isItem(v: unknown): v is Item {
  return (
    isRecord(v) &&
    isOrigin(v.origin) &&
    isCount(v.part) &&
    isCount(v.parts) &&
    v.parts >= 1 &&
    v.part < v.parts &&
    v.data instanceof Uint8Array
  );
}

/** Bytes a datagram takes on the wire, as our framing sizes it. */
export function datagramBytes(items: readonly Item[]): number {
  let n = DATAGRAM_HEADER_BYTES;
  for (const i of items) n += itemBytes(i.data.length);
  return n;
}

function checkMcast(
  v: Record<string, unknown>,
  limits: WireLimits,
  depth: number,
): Mcast | undefined {
  if (!isRing(v.ring) || !isCount(v.seq) || v.seq < 1 || !isNodeId(v.sender)) return undefined;
  if (v.mode !== 'agreed' && v.mode !== 'safe') return undefined;
  if (!Array.isArray(v.items) || !v.items.every(isItem)) return undefined;
  if (datagramBytes(v.items) > limits.mtuBytes) return undefined;
  let old: Mcast | null = null;
  // A datagram carries items, or (in Recovery) exactly one datagram of an older ring.
  if (v.old === null) {
    if (v.items.length < 1) return undefined;
  } else {
    if (v.items.length !== 0) return undefined;
    // A recovered datagram nests one level only: Recovery re-sends a ring's own datagrams.
    if (depth > 0 || !isRecord(v.old)) return undefined;
    const inner = checkMcast(v.old, limits, depth + 1);
    if (inner === undefined || inner.old !== null) return undefined;
    old = inner;
  }
  return {
    type: 'mcast',
    ring: v.ring,
    seq: v.seq,
    sender: v.sender,
    mode: v.mode,
    items: v.items,
    old,
  };
}

function checkToken(v: Record<string, unknown>, limits: WireLimits): Checked {
  const { ring, tokenSeq, seq, aru, aruId, rtr, fcc, backlog, recovery } = v;
  if (!isRing(ring) || typeof tokenSeq !== 'number' || !Number.isSafeInteger(tokenSeq)) return bad;
  if (!isCount(seq) || !isCount(aru) || !isCount(fcc) || !isCount(backlog)) return bad;
  if (!(aruId === 0 || isNodeId(aruId)) || typeof recovery !== 'boolean') return bad;
  if (!Array.isArray(rtr) || !rtr.every((s) => isCount(s) && s >= 1)) return bad;
  if (rtr.length > limits.retransmitEntriesMax || aru > seq || rtr.some((s) => s > seq)) {
    return { ok: false, reason: 'bad-token' };
  }
  const token: Token = {
    type: 'token',
    ring,
    tokenSeq,
    seq,
    aru,
    aruId,
    rtr: rtr as number[],
    fcc,
    backlog,
    recovery,
  };
  return { ok: true, msg: token };
}

function isEntry(v: unknown): v is CommitEntry {
  return (
    isRecord(v) &&
    isNodeId(v.id) &&
    isRing(v.oldRing) &&
    isCount(v.aru) &&
    isCount(v.highSeq) &&
    isCount(v.delivered) &&
    v.aru <= v.highSeq
  );
}

function checkCommit(v: Record<string, unknown>, limits: WireLimits): Checked {
  const { ring, members, entries, rotation } = v;
  if (!isRing(ring) || !isIdList(members, limits.membersMax) || members.length < 1) return bad;
  if (!Array.isArray(entries) || entries.length > members.length || !entries.every(isEntry)) {
    return bad;
  }
  if (rotation !== 1 && rotation !== 2) return bad;
  const sorted = members.every((m, i) => i === 0 || members[i - 1]! < m);
  if (!sorted || ring.rep !== members[0]) return bad;
  const commit: Commit = { type: 'commit', ring, members, entries, rotation };
  return { ok: true, msg: commit };
}

function checkJoin(v: Record<string, unknown>, limits: WireLimits): Checked {
  const { sender, procs, failed, ringSeq } = v;
  if (!isNodeId(sender) || !isCount(ringSeq)) return bad;
  if (!isIdList(procs, limits.membersMax) || !isIdList(failed, limits.membersMax)) return bad;
  const join: Join = { type: 'join', sender, procs, failed, ringSeq };
  return { ok: true, msg: join };
}

/** The message typed, or why it is refused. */
export function checkMessage(raw: unknown, limits: WireLimits): Checked {
  if (!isRecord(raw)) return bad;
  switch (raw.type) {
    case 'mcast': {
      const m = checkMcast(raw, limits, 0);
      return m === undefined ? bad : { ok: true, msg: m };
    }
    case 'token':
      return checkToken(raw, limits);
    case 'join':
      return checkJoin(raw, limits);
    case 'commit':
      return checkCommit(raw, limits);
    case 'ack': {
      if (!isRing(raw.ring) || typeof raw.tokenSeq !== 'number') return bad;
      if (!Number.isSafeInteger(raw.tokenSeq) || raw.tokenSeq < 0) return bad;
      return { ok: true, msg: { type: 'ack', ring: raw.ring, tokenSeq: raw.tokenSeq } };
    }
    case 'probe': {
      if (!isRing(raw.ring)) return bad;
      const probe: Probe = { type: 'probe', ring: raw.ring };
      return { ok: true, msg: probe };
    }
    case 'release': {
      if (!isRing(raw.ring)) return bad;
      const release: Release = { type: 'release', ring: raw.ring };
      return { ok: true, msg: release };
    }
    default:
      return bad;
  }
}
