import type { NodeId } from '../kernel/ids.ts';
import type { KvChange, KvOp, KvStateMachine } from '../kv/machine.ts';
import type { RaftConfig } from '../raft/types.ts';
import type { PeerAddress } from '../runtime/transport/transport.ts';
import type { MemberAddress, MemberStatus } from './engine.ts';
import { ApiError } from './errors.ts';

/**
 * Where each member listens, for peers (consensus traffic) and clients (forwarding, the
 * status API). Raft's configuration names members by id only, so the addresses travel in
 * the replicated key-value state itself, one record per member under a reserved prefix:
 * `addLearner` commits the record first and the configuration change after it. Every replica
 * applies the record before it can commit the change, a node restored from a snapshot gets
 * the records with the data, and a new leader knows every member it must replicate to.
 *
 * Clients may not write under the prefix (400); lists and watches leave it out.
 */
export const MEMBER_PREFIX = '\u0000quorate/members/';

export function memberKey(id: NodeId): string {
  return `${MEMBER_PREFIX}${id}`;
}

/**
 * A removed member's tombstone, committed before the configuration change that removes it.
 * Its id is never used again (as in etcd), so once a replica has applied the tombstone and
 * committed a configuration without the member, the member is gone for good: a peer may
 * tell it so, and it stops itself.
 */
export const REMOVED_PREFIX = '\u0000quorate/removed/';

export function removedKey(id: NodeId): string {
  return `${REMOVED_PREFIX}${id}`;
}

export function isReservedKey(key: string): boolean {
  return key.startsWith('\u0000quorate/');
}

/** Refuses a client write to a reserved key, as an answer the HTTP layer renders (400). */
export function guardReservedWrite(op: KvOp): void {
  if (op.f === 'get' || op.f === 'list') return;
  if (isReservedKey(op.key)) {
    throw new ApiError(400, 'invalid-request', 'keys starting with "\\u0000quorate/" are reserved');
  }
}

interface Addresses {
  readonly peerAddress: string;
  readonly clientUrl: string;
}

export function encodeMemberRecord(member: MemberAddress): string {
  return JSON.stringify({ peerAddress: member.peerAddress, clientUrl: member.clientUrl });
}

function decodeMemberRecord(value: string): Addresses | undefined {
  try {
    const raw = JSON.parse(value) as Partial<Addresses>;
    if (typeof raw.peerAddress !== 'string' || typeof raw.clientUrl !== 'string') return undefined;
    return { peerAddress: raw.peerAddress, clientUrl: raw.clientUrl };
  } catch {
    return undefined;
  }
}

/** "host:port" (or "[v6]:port") as a transport address; undefined when malformed. */
export function parsePeerAddress(text: string): PeerAddress | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return undefined;
  return { host: match[1] ?? match[2] ?? '', port };
}

/**
 * The address book: the addresses given at start (flags or config file), overridden by the
 * replicated records for other members. `onAddress` learns of every address set or changed.
 */
export class MemberBook {
  private readonly book = new Map<NodeId, Addresses>();
  private readonly tombstones = new Set<NodeId>();

  constructor(
    private readonly self: MemberAddress,
    initial: readonly MemberAddress[],
    private readonly onAddress: (id: NodeId, peer: PeerAddress) => void,
  ) {
    for (const m of initial) this.set(m.id, m);
    this.set(self.id, self);
  }

  clientUrl(id: NodeId): string | undefined {
    const url = this.book.get(id)?.clientUrl;
    return url === '' ? undefined : url;
  }

  /** Every member this node has an address for, itself included. */
  known(): NodeId[] {
    return [...this.book.keys()];
  }

  /** Whether member `id` has a tombstone: it was (or is being) removed, for good. */
  tombstoned(id: NodeId): boolean {
    return this.tombstones.has(id);
  }

  /** Reads the member records and tombstones out of a batch of applied changes. */
  observe(changes: readonly KvChange[]): void {
    for (const change of changes) {
      if (change.value === null) continue;
      if (change.key.startsWith(MEMBER_PREFIX)) this.record(change.key, change.value);
      else if (change.key.startsWith(REMOVED_PREFIX)) this.tombstone(change.key);
    }
  }

  /** Re-reads every record (after a snapshot replaced the state machine). */
  reload(machine: KvStateMachine): void {
    for (const [prefix, take] of [
      [MEMBER_PREFIX, (key: string, value: string) => this.record(key, value)],
      [REMOVED_PREFIX, (key: string) => this.tombstone(key)],
    ] as const) {
      // The list cap (1,000) is far past any cluster's member count, removed ones included.
      const listed = machine.read({ f: 'list', prefix, limit: 1000 });
      if (listed.f !== 'list') continue;
      for (const entry of listed.entries) take(entry.key, entry.value);
    }
  }

  members(config: RaftConfig): MemberStatus[] {
    const row = (id: NodeId, role: 'voter' | 'learner'): MemberStatus => ({
      id,
      role,
      peerAddress: this.book.get(id)?.peerAddress ?? '',
      clientUrl: this.book.get(id)?.clientUrl ?? '',
    });
    return [
      ...config.voters.map((id) => row(id, 'voter')),
      ...config.learners.map((id) => row(id, 'learner')),
    ];
  }

  private record(key: string, value: string): void {
    const id = Number(key.slice(MEMBER_PREFIX.length));
    const addresses = decodeMemberRecord(value);
    if (!Number.isSafeInteger(id) || id < 1 || addresses === undefined) return;
    if (id === this.self.id) return; // this node knows best where it listens
    this.set(id, addresses);
  }

  private tombstone(key: string): void {
    const id = Number(key.slice(REMOVED_PREFIX.length));
    if (Number.isSafeInteger(id) && id >= 1) this.tombstones.add(id);
  }

  private set(id: NodeId, addresses: Addresses): void {
    const prev = this.book.get(id);
    this.book.set(id, { peerAddress: addresses.peerAddress, clientUrl: addresses.clientUrl });
    if (id === this.self.id || prev?.peerAddress === addresses.peerAddress) return;
    const peer = parsePeerAddress(addresses.peerAddress);
    if (peer !== undefined) this.onAddress(id, peer);
  }
}
