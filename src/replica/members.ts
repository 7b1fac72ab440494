import type { NodeId } from '../kernel/ids.ts';
import { prefixEnd } from '../kv/bytes.ts';
import type { KvOp } from '../kv/machine.ts';
import { rangesOverlap, writeRanges } from '../kv/range.ts';
import { isReadOp } from '../kv/validate.ts';
import type { Refusal } from './refusal.ts';

/**
 * The reserved keys a Raft cluster keeps its members in. Raft's configuration names members
 * by id only, so their addresses travel in the replicated key-value state itself, one record
 * per member under `MEMBER_PREFIX` (committed before the configuration change that adds the
 * member), and a removed member's tombstone under `REMOVED_PREFIX` (committed before the
 * change that removes it). Clients may not write under the reserved prefix.
 */
export const MEMBER_PREFIX = '\u0000quorate/members/';

/**
 * A removed member's tombstone. Its id is never used again (as in etcd), so once a replica
 * has applied the tombstone and committed a configuration without the member, the member is
 * gone for good: a peer may tell it so, and it stops itself.
 */
export const REMOVED_PREFIX = '\u0000quorate/removed/';

const RESERVED_PREFIX = '\u0000quorate/';

export function memberKey(id: NodeId): string {
  return `${MEMBER_PREFIX}${id}`;
}

export function removedKey(id: NodeId): string {
  return `${REMOVED_PREFIX}${id}`;
}

export function isReservedKey(key: string): boolean {
  return key.startsWith(RESERVED_PREFIX);
}

/** The id a member record's or tombstone's key names, or undefined when it names none. */
export function idOfKey(prefix: string, key: string): NodeId | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const id = Number(key.slice(prefix.length));
  return Number.isSafeInteger(id) && id >= 1 ? id : undefined;
}

/** Whether an op may write a reserved key (any of its write ranges reaches the prefix). */
function writesReserved(op: KvOp): boolean {
  const reserved = { key: RESERVED_PREFIX, rangeEnd: prefixEnd(RESERVED_PREFIX) };
  return writeRanges(op).some((r) => rangesOverlap(r, reserved));
}

/** The refusal a client's write to a reserved key gets (reads see no reserved key). */
export function reservedKeyRefusal(op: KvOp): Refusal | undefined {
  if (isReadOp(op) || !writesReserved(op)) return undefined;
  return { type: 'invalid', reason: 'keys starting with "\\u0000quorate/" are reserved' };
}

/** A member's addresses as its record under `MEMBER_PREFIX` holds them. */
export interface MemberRecord {
  readonly peerAddress: string;
  readonly clientUrl: string;
}

export function encodeMemberRecord(member: MemberRecord): string {
  return JSON.stringify({ peerAddress: member.peerAddress, clientUrl: member.clientUrl });
}

export function decodeMemberRecord(value: string): MemberRecord | undefined {
  try {
    const raw = JSON.parse(value) as Partial<MemberRecord>;
    if (typeof raw.peerAddress !== 'string' || typeof raw.clientUrl !== 'string') return undefined;
    return { peerAddress: raw.peerAddress, clientUrl: raw.clientUrl };
  } catch {
    return undefined;
  }
}
