import { assert, unreachable } from '../../kernel/assert.ts';
import { type Core, type CoreTypes, OutputBuffer, type Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import { assertNodeId } from '../../kernel/ids.ts';
import type { Rng } from '../../kernel/rng.ts';
import { type Bucket, refill, retryAfterMs } from './flow.ts';
import { utf8 } from './hash.ts';
import { compareHlc, type Hlc, hlcNext, hlcObserve, hlcTooFarAhead, isHlc } from './hlc.ts';
import {
  type Entry,
  entryHash,
  MerkleTree,
  newerThan,
  type Range,
  ROOT_RANGE,
  SLOT_BITS,
  sameSummary,
  slotOf,
} from './merkle.ts';
import {
  collectTombstone,
  MERKLE_DEFAULTS,
  type MerkleConfig,
  validateMerkleConfig,
} from './policy.ts';
import {
  buildKeyLists,
  chunkByBytes,
  compareKeyList,
  type DropReason,
  isRange,
  isRangeSummary,
} from './repair.ts';
import {
  entryBytes,
  type KeyList,
  keyBytes,
  type MerkleMsg,
  type RangeSummary,
  rangeSummaryBytes,
} from './wire.ts';

export { MERKLE_DEFAULTS, type MerkleConfig };

/** Most members a replica admits over its life (a gossip cluster's members, past ones too). */
export const ADMITTED_MAX = 65_536;

export type MerkleRequest =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'get'; readonly key: string };

/** Why a write was refused; nothing was stored. Limits are named as in the config. */
export type MerkleRefusal =
  | {
      readonly type: 'too-large';
      readonly limit: 'keyBytesMax' | 'valueBytesMax';
      readonly max: number;
      readonly bytes: number;
    }
  | { readonly type: 'full'; readonly limit: 'entriesMax'; readonly max: number }
  | {
      readonly type: 'rate-limited';
      readonly limit: 'writeRatePerSecondMax';
      readonly retryAfterMs: number;
      readonly ratePerSecond: number;
    };

/** Tokens of the write bucket when `writeRatePerSecondMax` is set and no burst is. */
export const WRITE_BURST_DEFAULT = 100;

export type MerkleReply =
  | { readonly type: 'ok'; readonly key: string; readonly version: Hlc }
  | { readonly type: 'value'; readonly key: string; readonly entry: Entry | undefined }
  | { readonly type: 'refused'; readonly key: string; readonly refusal: MerkleRefusal };

/**
 * Durable writes, in order: `clock` raises the bound below which every version this node
 * ever issued lies (persisted in blocks of `clockBlockMs`, so a restart never reuses a
 * version even if the physical clock stepped back); `entry` stores an entry (replacing the
 * key's); `forget` removes a collected tombstone.
 */
export type MerklePersist =
  | { readonly type: 'clock'; readonly wallBound: number }
  | { readonly type: 'entry'; readonly entry: Entry }
  | { readonly type: 'forget'; readonly key: string; readonly version: Hlc };

export type MerkleEvent =
  | { readonly type: 'repair-started'; readonly peer: NodeId; readonly session: number }
  | { readonly type: 'in-sync'; readonly peer: NodeId }
  | { readonly type: 'collected'; readonly key: string }
  | { readonly type: 'dropped'; readonly reason: DropReason; readonly from: NodeId };

export interface MerkleTypes extends CoreTypes {
  readonly msg: MerkleMsg;
  readonly persist: MerklePersist;
  /** Every entry this replica stores (local or repaired), in order: for watchers. */
  readonly deliver: Entry;
  readonly request: MerkleRequest;
  readonly reply: MerkleReply;
  readonly event: MerkleEvent;
}

/** What a replica keeps on disk: the fold of its `MerklePersist` items. */
export interface MerkleDurable {
  readonly clockBound: number;
  readonly entries: ReadonlyMap<string, Entry>;
}

export function initialMerkleDurable(): MerkleDurable {
  return { clockBound: 0, entries: new Map() };
}

/** The reference meaning of each persist item (a real store must match it). */
export function applyMerklePersist(d: MerkleDurable, item: MerklePersist): MerkleDurable {
  switch (item.type) {
    case 'clock':
      assert(item.wallBound >= d.clockBound, 'the clock bound only grows');
      return { ...d, clockBound: item.wallBound };
    case 'entry': {
      const entries = new Map(d.entries);
      entries.set(item.entry.key, item.entry);
      return { ...d, entries };
    }
    case 'forget': {
      const entries = new Map(d.entries);
      const cur = entries.get(item.key);
      if (cur !== undefined && compareHlc(cur.version, item.version) === 0)
        entries.delete(item.key);
      return { ...d, entries };
    }
    default:
      return unreachable(item, 'merkle persist');
  }
}

/**
 * One replica of the eventually consistent multi-writer map, repaired by Merkle-tree
 * anti-entropy. `now` must be the host's wall clock in epoch milliseconds (the physical
 * part of the hybrid logical clock and the tombstone age both need a clock shared, loosely,
 * across nodes); it may step back, which the persisted clock bound makes harmless.
 */
export class MerkleNode implements Core<MerkleTypes> {
  readonly id: NodeId;
  readonly tree: MerkleTree;
  readonly dropped = new Map<DropReason, number>();
  private readonly out = new OutputBuffer<MerkleTypes>();
  private readonly config: MerkleConfig;
  private clock: Hlc;
  private clockBound: number;
  private storeSeq = 0;
  private session = 0;
  private nextRepairAt = 0;
  private live: NodeId[];
  /** Who may send us repairs and author entries: the configured members plus `admit`ted ones. */
  private readonly members: Set<NodeId>;
  /** Per peer: our store sequence number when our roots were last seen equal. */
  private readonly agreedSeq = new Map<NodeId, number>();
  private readonly tombstones = new Set<string>();
  /** The local write bucket (flow.ts), when a write rate is configured. */
  private readonly writeBucket: Bucket | undefined;

  constructor(
    config: MerkleConfig,
    private readonly rng: Rng,
    durable: MerkleDurable = initialMerkleDurable(),
  ) {
    validateMerkleConfig(config);
    this.config = config;
    this.id = config.id;
    this.live = [...config.members];
    this.members = new Set(config.members);
    this.writeBucket =
      config.writeRatePerSecondMax === undefined
        ? undefined
        : { tokens: this.writeBurst(), at: Number.NEGATIVE_INFINITY };
    this.tree = new MerkleTree({ leafKeysMax: config.leafKeysMax });
    // One past the bound: every version issued before a crash is at or below it.
    this.clock = { wall: durable.clockBound + 1, logical: 0, node: this.id };
    this.clockBound = durable.clockBound;
    for (const e of durable.entries.values()) {
      // We accepted its author once; peers must still be able to repair its entries to us.
      this.members.add(e.version.node);
      this.store(e);
      this.clock = hlcObserve(this.clock, e.version);
    }
    this.coverClock();
    this.invariants();
  }

  tick(now: number): void {
    if (now >= this.nextRepairAt) {
      this.nextRepairAt = now + this.config.repairIntervalMs;
      this.collectTombstones(now);
      this.startRepair();
    }
    this.invariants();
  }

  /** The membership layer's current live view (it must include this node). */
  setLive(live: readonly NodeId[]): void {
    for (const id of live) assertNodeId(id, 'live member');
    assert(live.includes(this.id), 'a node is live in its own view');
    assert(
      live.every((id) => this.members.has(id)),
      'live members are members (admit them first)',
    );
    this.live = [...live];
    this.invariants();
  }

  /**
   * Members learned after construction (a real store's gossip membership grows): they may
   * then send repairs and author entries. Never shrinks: a member that left still authored
   * entries its peers hold. Bounded by `ADMITTED_MAX`.
   */
  admit(ids: readonly NodeId[]): void {
    for (const id of ids) {
      assertNodeId(id, 'admitted member');
      if (this.members.has(id)) continue;
      assert(this.members.size < ADMITTED_MAX, `at most ${ADMITTED_MAX} members`);
      this.members.add(id);
    }
    this.invariants();
  }

  deadline(): number {
    return this.nextRepairAt;
  }

  ready(): Ready<MerkleTypes> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  /** Whether our root was last seen equal to `peer`'s after we stored sequence `seq`. */
  agreedSince(peer: NodeId): number | undefined {
    return this.agreedSeq.get(peer);
  }

  request(now: number, client: ClientId, req: MerkleRequest): void {
    switch (req.type) {
      case 'get': {
        const e = this.tree.get(req.key);
        const entry: Entry | undefined =
          e === undefined ? undefined : { key: e.key, version: e.version, value: e.value };
        this.out.reply(client, { type: 'value', key: req.key, entry });
        break;
      }
      case 'put':
      case 'delete': {
        const refusal = this.refuseWrite(req) ?? this.refuseRate(now);
        if (refusal !== undefined) {
          this.out.reply(client, { type: 'refused', key: req.key, refusal });
          break;
        }
        if (this.writeBucket !== undefined) this.writeBucket.tokens -= 1;
        this.clock = hlcNext(this.clock, now, this.id);
        this.coverClock();
        const value = req.type === 'put' ? req.value.slice() : undefined;
        const entry: Entry = { key: req.key, version: this.clock, value };
        this.storeDurably(entry);
        this.out.reply(client, { type: 'ok', key: req.key, version: entry.version });
        break;
      }
      default:
        unreachable(req, 'merkle request');
    }
    this.invariants();
  }

  private refuseWrite(req: MerkleRequest & { type: 'put' | 'delete' }): MerkleRefusal | undefined {
    const kb = utf8(req.key).length;
    if (kb > this.config.keyBytesMax) {
      return { type: 'too-large', limit: 'keyBytesMax', max: this.config.keyBytesMax, bytes: kb };
    }
    if (req.type === 'put' && req.value.length > this.config.valueBytesMax) {
      const max = this.config.valueBytesMax;
      return { type: 'too-large', limit: 'valueBytesMax', max, bytes: req.value.length };
    }
    if (this.tree.get(req.key) === undefined && this.tree.size >= this.config.entriesMax) {
      return { type: 'full', limit: 'entriesMax', max: this.config.entriesMax };
    }
    return undefined;
  }

  private writeBurst(): number {
    return this.config.writeBurstMax ?? WRITE_BURST_DEFAULT;
  }

  /** The write-rate check, last: a write refused for another reason spends no token. */
  private refuseRate(now: number): MerkleRefusal | undefined {
    const rate = this.config.writeRatePerSecondMax;
    const b = this.writeBucket;
    if (rate === undefined || b === undefined) return undefined;
    if (b.at === Number.NEGATIVE_INFINITY) b.at = now;
    refill(b, now, rate, { burstUpdates: this.writeBurst() });
    if (b.tokens >= 1) return undefined;
    return {
      type: 'rate-limited',
      limit: 'writeRatePerSecondMax',
      retryAfterMs: retryAfterMs(b, rate),
      ratePerSecond: rate,
    };
  }

  receive(now: number, from: NodeId, msg: MerkleMsg): void {
    if (!this.members.has(from) || from === this.id) {
      this.drop('unknown-peer', from);
      this.invariants();
      return;
    }
    if (!wellFormed(msg)) {
      this.drop('malformed', from);
      this.invariants();
      return;
    }
    switch (msg.type) {
      case 'hashes':
        this.handleHashes(from, msg.session, msg.ranges);
        break;
      case 'in-sync':
        if (sameSummary(msg.root, this.tree.rootSummary())) this.agree(from);
        break;
      case 'keys':
        this.handleKeys(from, msg.session, msg.lists);
        break;
      case 'values':
        this.handleValues(now, from, msg.session, msg.entries, msg.want);
        break;
      default:
        this.drop('malformed', from);
    }
    this.invariants();
  }

  private startRepair(): void {
    const peers = this.live.filter((p) => p !== this.id);
    if (peers.length === 0) return;
    this.beginRepair(this.rng.pick(peers));
  }

  /** Start a repair with `peer` now (the tick does this with a random live peer). */
  repairWith(peer: NodeId): void {
    assert(this.members.has(peer) && peer !== this.id, 'repair with another member');
    this.beginRepair(peer);
    this.invariants();
  }

  private beginRepair(peer: NodeId): void {
    this.session += 1;
    const root: RangeSummary = { ...ROOT_RANGE, ...this.tree.rootSummary() };
    this.out.emit({ type: 'repair-started', peer, session: this.session });
    this.out.send(peer, { type: 'hashes', session: this.session, ranges: [root] });
  }

  private handleHashes(from: NodeId, session: number, ranges: readonly RangeSummary[]): void {
    const lists: Range[] = [];
    const children: RangeSummary[] = [];
    for (const theirs of ranges) {
      if (!isRangeSummary(theirs)) {
        this.drop('malformed', from);
        return;
      }
      const mine = this.tree.summary(theirs);
      if (sameSummary(mine, theirs)) {
        if (theirs.bits === 0) {
          this.agree(from);
          this.out.send(from, { type: 'in-sync', session, root: mine });
        }
        continue;
      }
      const small = Math.max(mine.count, theirs.count) <= this.config.listKeysMax;
      if (theirs.bits === SLOT_BITS || small) {
        lists.push({ bits: theirs.bits, prefix: theirs.prefix });
        continue;
      }
      for (let i = 0; i < 16; i++) {
        const child: Range = { bits: theirs.bits + 4, prefix: theirs.prefix * 16 + i };
        children.push({ ...child, ...this.tree.summary(child) });
      }
    }
    const budget = this.config.messageBytesMax - 16;
    for (const chunk of chunkByBytes(children, rangeSummaryBytes, budget)) {
      this.out.send(from, { type: 'hashes', session, ranges: chunk });
    }
    this.sendKeyLists(from, session, lists);
  }

  private sendKeyLists(to: NodeId, session: number, ranges: readonly Range[]): void {
    const budget = this.config.messageBytesMax - 16;
    const lists = buildKeyLists(this.tree, ranges, budget);
    for (const chunk of chunkByBytes(lists, (l) => l.bytes, budget)) {
      this.out.send(to, { type: 'keys', session, lists: chunk.map((l) => l.list) });
    }
  }

  private handleKeys(from: NodeId, session: number, lists: readonly KeyList[]): void {
    const push: Entry[] = [];
    const want: string[] = [];
    for (const list of lists) {
      if (!isRange(list.range) || !Array.isArray(list.keys)) {
        this.drop('malformed', from);
        return;
      }
      const diff = compareKeyList(this.tree, list);
      if (diff === undefined) {
        this.drop('malformed', from);
        return;
      }
      push.push(...diff.push);
      want.push(...diff.want);
    }
    this.sendValues(from, session, push, want);
  }

  private sendValues(to: NodeId, session: number, push: Entry[], want: string[]): void {
    const budget = this.config.messageBytesMax - 16;
    const entryChunks = chunkByBytes(push, entryBytes, budget);
    const wantChunks = chunkByBytes(want, keyBytes, budget);
    // Entries and wants travel in separate messages: each chunk alone fits the budget.
    for (const entries of entryChunks)
      this.out.send(to, { type: 'values', session, entries, want: [] });
    for (const wanted of wantChunks) {
      this.out.send(to, { type: 'values', session, entries: [], want: wanted });
    }
  }

  private handleValues(
    now: number,
    from: NodeId,
    session: number,
    entries: readonly Entry[],
    want: readonly string[],
  ): void {
    for (const e of entries) this.merge(now, from, e);
    if (want.length === 0) return;
    const reply: Entry[] = [];
    for (const key of want) {
      if (typeof key !== 'string') {
        this.drop('malformed', from);
        return;
      }
      const e = this.tree.get(key);
      if (e !== undefined) reply.push({ key: e.key, version: e.version, value: e.value });
    }
    this.sendValues(from, session, reply, []);
  }

  /** Store a repaired entry if it wins; drop and count what is malformed or too large. */
  private merge(now: number, from: NodeId, e: Entry): void {
    const reason = this.checkIncoming(now, e);
    if (reason !== undefined) {
      this.drop(reason, from);
      return;
    }
    const cur = this.tree.get(e.key);
    if (!newerThan(e.version, cur?.version)) return;
    // An expired tombstone for a key we do not hold is stored again too: a replica that
    // still holds it is waiting for our agreement to collect it, and refusing it left the
    // two roots different for good (found by `quorate sim merkle`: 6 of 20 seeds never
    // converged). Storing it is always safe; it is collected again once every peer agrees.
    if (cur === undefined && this.tree.size >= this.config.entriesMax) {
      this.drop('full', from);
      return;
    }
    this.clock = hlcObserve(this.clock, e.version);
    this.coverClock();
    this.storeDurably({ key: e.key, version: e.version, value: e.value?.slice() });
  }

  private checkIncoming(now: number, e: Entry): DropReason | undefined {
    if (typeof e !== 'object' || e === null || typeof e.key !== 'string' || !isHlc(e.version)) {
      return 'malformed';
    }
    if (e.value !== undefined && !(e.value instanceof Uint8Array)) return 'malformed';
    if (!this.members.has(e.version.node)) return 'malformed';
    if (utf8(e.key).length > this.config.keyBytesMax) return 'too-large';
    if (e.value !== undefined && e.value.length > this.config.valueBytesMax) return 'too-large';
    if (hlcTooFarAhead(e.version, now, this.config.clockDriftMaxMs)) return 'future';
    return undefined;
  }

  private storeDurably(entry: Entry): void {
    this.out.persist({ type: 'entry', entry });
    this.store(entry);
    this.out.deliver(entry);
  }

  private store(entry: Entry): void {
    this.storeSeq += 1;
    const kb = utf8(entry.key);
    this.tree.set({
      key: entry.key,
      version: entry.version,
      value: entry.value,
      slot: slotOf(entry.key, kb),
      hash: entryHash(entry, kb),
      storedSeq: this.storeSeq,
    });
    if (entry.value === undefined) this.tombstones.add(entry.key);
    else this.tombstones.delete(entry.key);
  }

  /** Keep every version we may issue below a durable bound (persisted in blocks). */
  private coverClock(): void {
    if (this.clock.wall <= this.clockBound) return;
    this.clockBound = this.clock.wall + this.config.clockBlockMs;
    this.out.persist({ type: 'clock', wallBound: this.clockBound });
  }

  private agree(peer: NodeId): void {
    this.agreedSeq.set(peer, this.storeSeq);
    this.out.emit({ type: 'in-sync', peer });
  }

  private collectTombstones(now: number): void {
    for (const key of [...this.tombstones]) {
      const e = this.tree.get(key);
      assert(e !== undefined && e.value === undefined, 'tracked tombstones are stored tombstones');
      const ok = collectTombstone(
        { wall: e.version.wall, storedSeq: e.storedSeq },
        now,
        this.config.tombstoneTtlMs,
        this.live.filter((p) => p !== this.id),
        this.agreedSeq,
      );
      if (!ok) continue;
      this.tree.delete(key);
      this.tombstones.delete(key);
      this.out.persist({ type: 'forget', key, version: e.version });
      this.out.emit({ type: 'collected', key });
    }
  }

  private drop(reason: DropReason, from: NodeId): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    this.out.emit({ type: 'dropped', reason, from });
  }

  private invariants(): void {
    this.tree.checkCheap();
    assert(this.tree.size <= this.config.entriesMax, 'at most entriesMax entries');
    assert(this.tombstones.size <= this.tree.size, 'tombstones are a subset of entries');
    assert(this.clock.wall <= this.clockBound, 'the clock stays below its durable bound');
    assert(this.clock.node === this.id, 'the clock is ours');
    if (this.writeBucket !== undefined) {
      assert(this.writeBucket.tokens >= 0, 'the write bucket never goes below empty');
      assert(
        this.writeBucket.tokens <= this.writeBurst(),
        'the write bucket holds a burst at most',
      );
    }
  }
}

/** The shape checks a decoder cannot be trusted to have done (arrays are arrays, ...). */
function wellFormed(msg: MerkleMsg): boolean {
  if (typeof msg !== 'object' || msg === null || !Number.isSafeInteger(msg.session)) return false;
  switch (msg.type) {
    case 'hashes':
      return Array.isArray(msg.ranges);
    case 'in-sync':
      return typeof msg.root === 'object' && msg.root !== null;
    case 'keys':
      return Array.isArray(msg.lists);
    case 'values':
      return Array.isArray(msg.entries) && Array.isArray(msg.want);
    default:
      return false;
  }
}
