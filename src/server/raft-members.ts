import type { NodeId } from '../kernel/ids.ts';
import type { KvChange, KvStateMachine } from '../kv/machine.ts';
import type { RaftConfig } from '../raft/types.ts';
import {
  decodeMemberRecord,
  encodeMemberRecord,
  idOfKey,
  isReservedKey,
  MEMBER_PREFIX,
  type MemberRecord,
  memberKey,
  REMOVED_PREFIX,
  removedKey,
} from '../replica/members.ts';
import type { PeerAddress } from '../runtime/transport/transport.ts';
import type { MemberAddress, MemberStatus } from './engine.ts';

/**
 * Where each member listens, for peers (consensus traffic) and clients (forwarding, the
 * status API). The addresses travel in the replicated key-value state itself, under the
 * reserved keys of src/replica/members.ts: `addLearner` commits the record first and the
 * configuration change after it, so every replica applies the record before it can commit
 * the change, a node restored from a snapshot gets the records with the data, and a new
 * leader knows every member it must replicate to. Lists and watches leave them out.
 */
export { encodeMemberRecord, isReservedKey, MEMBER_PREFIX, memberKey, REMOVED_PREFIX, removedKey };

type Addresses = MemberRecord;

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
 * replicated records for other members. From `open()` on, `onAddress` learns of every address
 * set or changed, except those of tombstoned members: a member being removed is never dialed
 * again (its address stays here, to tell it once if it speaks), and `forget` drops a member
 * whose removal committed from the list of known peers.
 */
export class MemberBook {
  private readonly book = new Map<NodeId, Addresses>();
  private readonly tombstones = new Set<NodeId>();
  private readonly forgotten = new Set<NodeId>();
  private opened = false;

  constructor(
    private readonly self: MemberAddress,
    initial: readonly MemberAddress[],
    private readonly onAddress: (id: NodeId, peer: PeerAddress) => void,
  ) {
    for (const m of initial) this.set(m.id, m);
    this.set(self.id, self);
  }

  /** Hands every address known so far to `onAddress`, then every later one as it comes. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    for (const [id, addresses] of this.book) this.announce(id, addresses.peerAddress);
  }

  /** Member `id` was removed for good: it is no peer any more (its address is kept). */
  forget(id: NodeId): void {
    this.forgotten.add(id);
  }

  /** The peer address of member `id`, removed ones included. */
  peerAddress(id: NodeId): PeerAddress | undefined {
    const text = this.book.get(id)?.peerAddress;
    return text === undefined ? undefined : parsePeerAddress(text);
  }

  clientUrl(id: NodeId): string | undefined {
    const url = this.book.get(id)?.clientUrl;
    return url === '' ? undefined : url;
  }

  /** Every member this node has an address for, itself included, removed ones not. */
  known(): NodeId[] {
    return [...this.book.keys()].filter((id) => !this.forgotten.has(id));
  }

  /**
   * Reads the member records and tombstones out of a batch of applied changes; tombstones
   * first, so a log replayed after a restart never dials a member it removed.
   */
  observe(changes: readonly KvChange[]): void {
    for (const change of changes) {
      if (change.value !== null && change.key.startsWith(REMOVED_PREFIX)) {
        this.tombstone(change.key);
      }
    }
    for (const change of changes) {
      if (change.value !== null && change.key.startsWith(MEMBER_PREFIX)) {
        this.record(change.key, change.value);
      }
    }
  }

  /** Re-reads every record (after a snapshot replaced the state machine), tombstones first. */
  reload(machine: KvStateMachine): void {
    for (const [prefix, take] of [
      [REMOVED_PREFIX, (key: string) => this.tombstone(key)],
      [MEMBER_PREFIX, (key: string, value: string) => this.record(key, value)],
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
    const id = idOfKey(MEMBER_PREFIX, key);
    const addresses = decodeMemberRecord(value);
    if (id === undefined || addresses === undefined) return;
    if (id === this.self.id) return; // this node knows best where it listens
    this.set(id, addresses);
  }

  private tombstone(key: string): void {
    const id = idOfKey(REMOVED_PREFIX, key);
    if (id !== undefined) this.tombstones.add(id);
  }

  private set(id: NodeId, addresses: Addresses): void {
    const prev = this.book.get(id);
    this.book.set(id, { peerAddress: addresses.peerAddress, clientUrl: addresses.clientUrl });
    if (this.opened && prev?.peerAddress !== addresses.peerAddress) {
      this.announce(id, addresses.peerAddress);
    }
  }

  private announce(id: NodeId, address: string): void {
    if (id === this.self.id || this.tombstones.has(id) || this.forgotten.has(id)) return;
    const peer = parsePeerAddress(address);
    if (peer !== undefined) this.onAddress(id, peer);
  }
}
