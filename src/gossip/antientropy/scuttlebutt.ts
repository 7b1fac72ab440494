import { assert, unreachable } from '../../kernel/assert.ts';
import { type Core, type CoreTypes, OutputBuffer, type Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import { assertNodeId } from '../../kernel/ids.ts';
import type { Rng } from '../../kernel/rng.ts';
import {
  adaptRate,
  type Bucket,
  FLOW_DEFAULTS,
  type FlowConfig,
  type RateInfo,
  refill,
  retryAfterMs,
  smoothDesired,
} from './flow.ts';
import { utf8 } from './hash.ts';

/**
 * Scuttlebutt reconciliation (van Renesse, Dumitriu, Gough, Chandra 2008, section 3.2):
 * every node owns its keys and numbers its writes with one growing version; a node's
 * knowledge of an owner is summarised by one number, the highest version it holds of that
 * owner, and it holds every one of that owner's current entries at or below it ("no gaps").
 * A gossip is three messages: p sends its digest; q answers the deltas p lacks and its own
 * digest; p answers the deltas q lacks. Deltas of one owner always leave in version order
 * from just above the peer's digest, so cutting them at the mtu keeps the peer gap-free.
 */

/**
 * Scuttlebutt orderings keep every holder gap-free; the precise ones are the paper's
 * baselines (section 3.1): peers exchange their whole (owner, key, version) tables and send
 * exactly the newer entries, oldest or newest write first, with no gap rule (and digests
 * that grow with the data, which is the point of comparing).
 */
export type ScuttleOrdering =
  | 'scuttle-depth'
  | 'scuttle-breadth'
  | 'precise-oldest'
  | 'precise-newest';
export const SCUTTLE_ORDERINGS = [
  'scuttle-depth',
  'scuttle-breadth',
  'precise-oldest',
  'precise-newest',
] as const;

export function isPrecise(o: ScuttleOrdering): o is 'precise-oldest' | 'precise-newest' {
  return o === 'precise-oldest' || o === 'precise-newest';
}

export interface ScuttleConfig extends FlowConfig {
  readonly id: NodeId;
  readonly members: readonly NodeId[];
  /** Which deltas go first when they do not all fit. Default scuttle-depth. */
  readonly ordering: ScuttleOrdering;
  /** Deltas per gossip message (the paper's mtu). Default 100. */
  readonly mtuDeltas: number;
  /** Gossip with one random live peer this often. Default 1 000 ms. */
  readonly gossipIntervalMs: number;
  /** Versions are reserved durably this many at a time. Default 1 000. */
  readonly versionBlock: number;
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  /** Most entries held, all owners together. Default 2^20. */
  readonly entriesMax: number;
}

export const SCUTTLE_DEFAULTS = {
  ...FLOW_DEFAULTS,
  ordering: 'scuttle-depth',
  mtuDeltas: 100,
  gossipIntervalMs: 1_000,
  versionBlock: 1_000,
  keyBytesMax: 256,
  valueBytesMax: 16 * 1024,
  entriesMax: 2 ** 20,
} as const satisfies Omit<ScuttleConfig, 'id' | 'members'>;

export interface Delta {
  readonly owner: NodeId;
  readonly key: string;
  readonly value: Uint8Array;
  readonly version: number;
  /** The owner's clock when it wrote (ms): orders the precise baselines by age. */
  readonly at: number;
}

/** Precise reconciliation's digest: every (owner, key, version) held. */
export type KeyDigest = readonly (readonly [owner: NodeId, key: string, version: number])[];

/** (owner, highest version held without gaps). */
export type Digest = readonly (readonly [owner: NodeId, version: number])[];

export type ScuttleMsg =
  | {
      readonly type: 'digest';
      readonly digest: Digest;
      /** Precise orderings only: the sender's whole key table. */
      readonly keys: KeyDigest | undefined;
      readonly rates: RateInfo;
    }
  | {
      readonly type: 'deltas';
      readonly deltas: readonly Delta[];
      /** The receiver's digest these deltas continue (per owner, the version they start above). */
      readonly base: Digest;
      /** Present on the reply to a digest: the sender's digest, for the third message. */
      readonly digest: Digest | undefined;
      /** Precise orderings only, with `digest`: the sender's whole key table. */
      readonly keys: KeyDigest | undefined;
      readonly rates: RateInfo;
      /** The sender had more deltas for us than the mtu let it send. */
      readonly cut: boolean;
    };

export type ScuttleRequest =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'get'; readonly owner: NodeId; readonly key: string };

export type ScuttleRefusal =
  | { readonly type: 'rate-limited'; readonly retryAfterMs: number; readonly ratePerSecond: number }
  | {
      readonly type: 'too-large';
      readonly limit: 'keyBytesMax' | 'valueBytesMax';
      readonly max: number;
      readonly bytes: number;
    }
  | { readonly type: 'full'; readonly limit: 'entriesMax'; readonly max: number };

export type ScuttleReply =
  | { readonly type: 'ok'; readonly key: string; readonly version: number }
  | { readonly type: 'value'; readonly key: string; readonly delta: Delta | undefined }
  | { readonly type: 'refused'; readonly key: string; readonly refusal: ScuttleRefusal };

/** `version-bound`: no version above it was issued; `own`: one of our writes. */
export type ScuttlePersist =
  | { readonly type: 'version-bound'; readonly bound: number }
  | { readonly type: 'own'; readonly delta: Delta };

export type ScuttleDrop = 'malformed' | 'unknown-peer' | 'too-large' | 'full';

export type ScuttleEvent =
  | { readonly type: 'rate'; readonly ratePerSecond: number }
  | { readonly type: 'dropped'; readonly reason: ScuttleDrop; readonly from: NodeId };

export interface ScuttleTypes extends CoreTypes {
  readonly msg: ScuttleMsg;
  readonly persist: ScuttlePersist;
  readonly deliver: Delta;
  readonly request: ScuttleRequest;
  readonly reply: ScuttleReply;
  readonly event: ScuttleEvent;
}

export interface ScuttleDurable {
  readonly versionBound: number;
  readonly own: ReadonlyMap<string, Delta>;
}

export function initialScuttleDurable(): ScuttleDurable {
  return { versionBound: 0, own: new Map() };
}

export function applyScuttlePersist(d: ScuttleDurable, p: ScuttlePersist): ScuttleDurable {
  switch (p.type) {
    case 'version-bound':
      assert(p.bound >= d.versionBound, 'the version bound only grows');
      return { ...d, versionBound: p.bound };
    case 'own': {
      const own = new Map(d.own);
      own.set(p.delta.key, p.delta);
      return { ...d, own };
    }
    default:
      return unreachable(p, 'scuttle persist');
  }
}

function validate(c: ScuttleConfig): void {
  assertNodeId(c.id, 'id');
  for (const m of c.members) assertNodeId(m, 'member');
  assert(c.members.includes(c.id), 'members must include this node');
  assert(SCUTTLE_ORDERINGS.includes(c.ordering), `unknown ordering ${c.ordering}`);
  for (const [name, v] of [
    ['mtuDeltas', c.mtuDeltas],
    ['gossipIntervalMs', c.gossipIntervalMs],
    ['versionBlock', c.versionBlock],
    ['keyBytesMax', c.keyBytesMax],
    ['valueBytesMax', c.valueBytesMax],
    ['entriesMax', c.entriesMax],
  ] as const) {
    assert(Number.isSafeInteger(v) && v >= 1, `${name} must be a positive integer, got ${v}`);
  }
  assert(c.rateMinPerSecond > 0 && c.rateInitialPerSecond >= c.rateMinPerSecond, 'rates > 0');
  assert(c.rateDecreaseFactor > 0 && c.rateDecreaseFactor < 1, 'rateDecreaseFactor in (0, 1)');
  assert(c.rateIncreasePerSecond > 0 && c.burstUpdates >= 1, 'increase > 0, burst >= 1');
  assert(c.desiredSmoothing > 0 && c.desiredSmoothing <= 1, 'desiredSmoothing in (0, 1]');
}

/**
 * Choose at most `mtu` deltas for a peer whose digest is `theirs`. `candidates(owner)` are
 * our entries of `owner` above the peer's version, ascending. Depth: owners with the most
 * missing deltas first, each sent as far as it fits. Breadth: round-robin over owners, one
 * delta per owner per turn. Both start from a random owner order (ties broken fairly).
 */
export function selectDeltas(
  perOwner: readonly Delta[][],
  mtu: number,
  ordering: ScuttleOrdering,
  rng: Rng,
): { deltas: Delta[]; cut: boolean } {
  const owners = rng.shuffle([...perOwner].filter((l) => l.length > 0));
  const total = owners.reduce((n, l) => n + l.length, 0);
  const out: Delta[] = [];
  assert(!isPrecise(ordering), 'precise orderings select with selectPrecise');
  if (ordering === 'scuttle-depth') {
    owners.sort((a, b) => b.length - a.length); // stable: the shuffle breaks ties
    for (const list of owners) {
      for (const d of list) {
        if (out.length >= mtu) break;
        out.push(d);
      }
    }
  } else {
    for (let turn = 0; out.length < Math.min(mtu, total); turn++) {
      for (const list of owners) {
        const d = list[turn];
        if (d !== undefined && out.length < mtu) out.push(d);
      }
    }
  }
  return { deltas: out, cut: total > out.length };
}

export class ScuttleNode implements Core<ScuttleTypes> {
  readonly id: NodeId;
  readonly dropped = new Map<ScuttleDrop, number>();
  private readonly out = new OutputBuffer<ScuttleTypes>();
  /** owner -> key -> latest delta we hold. */
  private readonly store = new Map<NodeId, Map<string, Delta>>();
  /** owner -> highest version held without gaps (our digest). */
  private readonly known = new Map<NodeId, number>();
  private entries = 0;
  private version: number;
  private versionBound: number;
  private rate: number;
  private desired: number;
  private attempts = 0;
  private readonly bucket: Bucket;
  private nextGossipAt = 0;
  private live: NodeId[];
  /** Deltas we could not send on our last exchange with each peer (backlog). */
  readonly backlog = new Map<NodeId, number>();

  constructor(
    private readonly config: ScuttleConfig,
    private readonly rng: Rng,
    durable: ScuttleDurable = initialScuttleDurable(),
  ) {
    validate(config);
    this.id = config.id;
    this.live = [...config.members];
    this.rate = config.rateInitialPerSecond;
    this.desired = config.rateInitialPerSecond;
    this.bucket = { tokens: config.burstUpdates, at: Number.NEGATIVE_INFINITY };
    // Everything up to the durable bound may have been issued before a crash.
    this.version = durable.versionBound;
    this.versionBound = durable.versionBound;
    let ownMax = 0;
    for (const d of durable.own.values()) {
      this.hold(d);
      ownMax = Math.max(ownMax, d.version);
    }
    // Our digest of ourselves is our newest write, not the reserved bound: peers can only
    // ever reach versions that some delta carries.
    this.known.set(this.id, ownMax);
    this.invariants();
  }

  /** Our digest: (owner, highest version held), one pair per owner we know. */
  digest(): Digest {
    return [...this.known].sort((a, b) => a[0] - b[0]);
  }

  get(owner: NodeId, key: string): Delta | undefined {
    return this.store.get(owner)?.get(key);
  }

  get ratePerSecond(): number {
    return this.rate;
  }

  get desiredPerSecond(): number {
    return this.desired;
  }

  tick(now: number): void {
    if (this.bucket.at === Number.NEGATIVE_INFINITY) this.bucket.at = now;
    if (now >= this.nextGossipAt) {
      if (this.nextGossipAt > 0) {
        this.desired = smoothDesired(
          this.desired,
          this.attempts,
          this.config.gossipIntervalMs,
          this.config,
        );
      }
      this.attempts = 0;
      this.nextGossipAt = now + this.config.gossipIntervalMs;
      const peers = this.live.filter((p) => p !== this.id);
      if (peers.length > 0) {
        const peer = this.rng.pick(peers);
        this.out.send(peer, {
          type: 'digest',
          digest: this.digest(),
          keys: this.keyDigest(),
          rates: this.rates(),
        });
      }
    }
    this.invariants();
  }

  setLive(live: readonly NodeId[]): void {
    assert(live.includes(this.id), 'a node is live in its own view');
    this.live = [...live];
    this.invariants();
  }

  deadline(): number {
    return this.nextGossipAt;
  }

  ready(): Ready<ScuttleTypes> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  request(now: number, client: ClientId, req: ScuttleRequest): void {
    switch (req.type) {
      case 'get':
        this.out.reply(client, {
          type: 'value',
          key: req.key,
          delta: this.get(req.owner, req.key),
        });
        break;
      case 'put': {
        const refusal = this.refusePut(now, req);
        if (refusal !== undefined) {
          this.out.reply(client, { type: 'refused', key: req.key, refusal });
          break;
        }
        this.bucket.tokens -= 1;
        this.version += 1;
        if (this.version > this.versionBound) {
          this.versionBound = this.version + this.config.versionBlock - 1;
          this.out.persist({ type: 'version-bound', bound: this.versionBound });
        }
        const delta: Delta = {
          owner: this.id,
          key: req.key,
          value: req.value.slice(),
          version: this.version,
          at: now,
        };
        this.out.persist({ type: 'own', delta });
        this.hold(delta);
        this.known.set(this.id, this.version);
        this.out.reply(client, { type: 'ok', key: req.key, version: this.version });
        break;
      }
      default:
        unreachable(req, 'scuttle request');
    }
    this.invariants();
  }

  private refusePut(
    now: number,
    req: { key: string; value: Uint8Array },
  ): ScuttleRefusal | undefined {
    const kb = utf8(req.key).length;
    if (kb > this.config.keyBytesMax) {
      return { type: 'too-large', limit: 'keyBytesMax', max: this.config.keyBytesMax, bytes: kb };
    }
    if (req.value.length > this.config.valueBytesMax) {
      const max = this.config.valueBytesMax;
      return { type: 'too-large', limit: 'valueBytesMax', max, bytes: req.value.length };
    }
    if (this.get(this.id, req.key) === undefined && this.entries >= this.config.entriesMax) {
      return { type: 'full', limit: 'entriesMax', max: this.config.entriesMax };
    }
    this.attempts += 1;
    if (this.bucket.at === Number.NEGATIVE_INFINITY) this.bucket.at = now;
    refill(this.bucket, now, this.rate, this.config);
    if (this.bucket.tokens < 1) {
      const retry = retryAfterMs(this.bucket, this.rate);
      return { type: 'rate-limited', retryAfterMs: retry, ratePerSecond: this.rate };
    }
    return undefined;
  }

  receive(_now: number, from: NodeId, msg: ScuttleMsg): void {
    if (!this.config.members.includes(from) || from === this.id) {
      this.drop('unknown-peer', from);
    } else if (typeof msg !== 'object' || msg === null) {
      this.drop('malformed', from);
    } else if (!isDigest(msg.digest) || !isRates(msg.rates) || !isKeyDigest(msg.keys)) {
      this.drop('malformed', from);
    } else if (msg.type === 'digest') {
      const { deltas, cut } = this.deltasFor(from, msg.digest, msg.keys);
      this.adapt(msg.rates, cut);
      this.out.send(from, {
        type: 'deltas',
        deltas,
        base: msg.digest,
        digest: this.digest(),
        keys: this.keyDigest(),
        rates: this.rates(),
        cut,
      });
    } else if (msg.type === 'deltas' && isDigest(msg.base) && msg.base !== undefined) {
      this.applyDeltas(from, msg.deltas, msg.base);
      let cut = false;
      if (msg.digest !== undefined) {
        const reply = this.deltasFor(from, msg.digest, msg.keys);
        cut = reply.cut;
        this.out.send(from, {
          type: 'deltas',
          deltas: reply.deltas,
          base: msg.digest,
          digest: undefined,
          keys: undefined,
          rates: this.rates(),
          cut,
        });
      }
      this.adapt(msg.rates, cut || msg.cut);
    } else {
      this.drop('malformed', from);
    }
    this.invariants();
  }

  /** Precise orderings only: every (owner, key, version) we hold. */
  private keyDigest(): KeyDigest | undefined {
    if (!isPrecise(this.config.ordering)) return undefined;
    const out: [NodeId, string, number][] = [];
    for (const [owner, m] of this.store)
      for (const d of m.values()) out.push([owner, d.key, d.version]);
    return out;
  }

  private deltasFor(
    peer: NodeId,
    theirs: Digest,
    keys: KeyDigest | undefined,
  ): { deltas: Delta[]; cut: boolean } {
    if (isPrecise(this.config.ordering)) {
      const chosen = selectPrecise(
        this.store.values(),
        keys ?? [],
        this.config.mtuDeltas,
        this.config.ordering,
      );
      this.backlog.set(peer, chosen.backlog);
      return chosen;
    }
    const seen = new Map(theirs);
    const perOwner: Delta[][] = [];
    for (const [owner, max] of this.known) {
      const above = seen.get(owner) ?? 0;
      if (max <= above) continue;
      const list = [...(this.store.get(owner)?.values() ?? [])]
        .filter((d) => d.version > above)
        .sort((a, b) => a.version - b.version);
      perOwner.push(list);
    }
    const chosen = selectDeltas(perOwner, this.config.mtuDeltas, this.config.ordering, this.rng);
    const total = perOwner.reduce((n, l) => n + l.length, 0);
    this.backlog.set(peer, total - chosen.deltas.length);
    return chosen;
  }

  /** Why a deltas message must be dropped whole, or undefined if it is well formed. */
  private checkDeltas(deltas: readonly Delta[], base: Digest): ScuttleDrop | undefined {
    if (!Array.isArray(deltas) || deltas.length > this.config.mtuDeltas) return 'malformed';
    const bases = new Map(base);
    // Per owner, versions strictly ascending from just above the base: one out-of-order
    // delta could open a gap.
    const last = new Map<NodeId, number>();
    for (const d of deltas) {
      if (!isDelta(d) || !this.config.members.includes(d.owner)) return 'malformed';
      const floor = last.get(d.owner) ?? bases.get(d.owner) ?? 0;
      if (d.version <= floor) return 'malformed';
      last.set(d.owner, d.version);
      if (utf8(d.key).length > this.config.keyBytesMax) return 'too-large';
      if (d.value.length > this.config.valueBytesMax) return 'too-large';
    }
    return undefined;
  }

  private applyDeltas(from: NodeId, deltas: readonly Delta[], base: Digest): void {
    if (isPrecise(this.config.ordering)) {
      this.applyPrecise(from, deltas);
      return;
    }
    const bad = this.checkDeltas(deltas, base);
    if (bad !== undefined) {
      this.drop(bad, from);
      return;
    }
    const bases = new Map(base);
    const stopped = new Set<NodeId>();
    for (const d of deltas) {
      if (d.owner === this.id || stopped.has(d.owner)) continue; // we own our keys
      const known = this.known.get(d.owner) ?? 0;
      // The sender started above `base`; if we know less (we restarted and lost soft
      // state since our digest), taking these would leave a gap below them.
      if ((bases.get(d.owner) ?? 0) > known) {
        stopped.add(d.owner);
        continue;
      }
      if (d.version <= known) continue;
      if (this.get(d.owner, d.key) === undefined && this.entries >= this.config.entriesMax) {
        // Not holding it means we may not advance past it either: stop this owner here.
        this.drop('full', from);
        stopped.add(d.owner);
        continue;
      }
      const copy: Delta = {
        owner: d.owner,
        key: d.key,
        value: d.value.slice(),
        version: d.version,
        at: d.at,
      };
      this.hold(copy);
      this.known.set(d.owner, d.version);
      this.out.deliver(copy);
    }
  }

  /** Precise baselines: take each entry newer than ours, in any order (no gap rule). */
  private applyPrecise(from: NodeId, deltas: readonly Delta[]): void {
    if (!Array.isArray(deltas) || deltas.length > this.config.mtuDeltas) {
      this.drop('malformed', from);
      return;
    }
    for (const d of deltas) {
      if (!isDelta(d) || !this.config.members.includes(d.owner)) {
        this.drop('malformed', from);
        continue;
      }
      if (
        utf8(d.key).length > this.config.keyBytesMax ||
        d.value.length > this.config.valueBytesMax
      ) {
        this.drop('too-large', from);
        continue;
      }
      const cur = this.get(d.owner, d.key);
      if (d.owner === this.id || (cur !== undefined && cur.version >= d.version)) continue;
      if (cur === undefined && this.entries >= this.config.entriesMax) {
        this.drop('full', from);
        continue;
      }
      const copy: Delta = { ...d, value: d.value.slice() };
      this.hold(copy);
      this.known.set(d.owner, Math.max(this.known.get(d.owner) ?? 0, d.version));
      this.out.deliver(copy);
    }
  }

  private hold(d: Delta): void {
    let m = this.store.get(d.owner);
    if (m === undefined) {
      m = new Map();
      this.store.set(d.owner, m);
    }
    const cur = m.get(d.key);
    if (cur === undefined) this.entries += 1;
    else assert(cur.version < d.version, 'an owner never reuses a version');
    m.set(d.key, d);
    if (d.owner === this.id) this.version = Math.max(this.version, d.version);
  }

  private rates(): RateInfo {
    return { rate: this.rate, desired: this.desired };
  }

  private adapt(peer: RateInfo, overloaded: boolean): void {
    const next = adaptRate(this.rates(), peer, overloaded, this.config);
    if (next !== this.rate) {
      this.rate = next;
      this.out.emit({ type: 'rate', ratePerSecond: next });
    }
  }

  private drop(reason: ScuttleDrop, from: NodeId): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    this.out.emit({ type: 'dropped', reason, from });
  }

  private invariants(): void {
    assert(this.version <= this.versionBound, 'every issued version is below the durable bound');
    const self = this.known.get(this.id) ?? -1;
    assert(self >= 0 && self <= this.version, 'our digest of ourselves is at most our version');
    assert(this.entries <= this.config.entriesMax, 'at most entriesMax entries');
    assert(
      this.rate >= this.config.rateMinPerSecond && Number.isFinite(this.rate),
      'a finite rate',
    );
  }
}

function isDigest(d: unknown): d is Digest | undefined {
  if (d === undefined) return true;
  return (
    Array.isArray(d) &&
    d.every(
      (p) =>
        Array.isArray(p) &&
        p.length === 2 &&
        Number.isInteger(p[0]) &&
        Number.isSafeInteger(p[1]) &&
        p[1] >= 0,
    )
  );
}

function isKeyDigest(k: unknown): k is KeyDigest | undefined {
  if (k === undefined) return true;
  return (
    Array.isArray(k) &&
    k.every(
      (t) =>
        Array.isArray(t) &&
        t.length === 3 &&
        Number.isInteger(t[0]) &&
        typeof t[1] === 'string' &&
        Number.isSafeInteger(t[2]),
    )
  );
}

function isRates(r: unknown): r is RateInfo {
  if (typeof r !== 'object' || r === null) return false;
  const { rate, desired } = r as Record<string, unknown>;
  return (
    Number.isFinite(rate) &&
    (rate as number) > 0 &&
    Number.isFinite(desired) &&
    (desired as number) >= 0
  );
}

function isDelta(d: unknown): d is Delta {
  if (typeof d !== 'object' || d === null) return false;
  const x = d as Record<string, unknown>;
  return (
    Number.isInteger(x.owner) &&
    typeof x.key === 'string' &&
    x.value instanceof Uint8Array &&
    Number.isSafeInteger(x.version) &&
    (x.version as number) >= 1 &&
    Number.isFinite(x.at)
  );
}

/**
 * The precise baselines' choice: every entry we hold that the peer's key table lacks or
 * holds older, oldest write first (precise-oldest) or newest first (precise-newest), cut at
 * the mtu.
 */
export function selectPrecise(
  stores: Iterable<ReadonlyMap<string, Delta>>,
  theirs: KeyDigest,
  mtu: number,
  ordering: 'precise-oldest' | 'precise-newest',
): { deltas: Delta[]; cut: boolean; backlog: number } {
  const seen = new Map<string, number>();
  for (const [owner, key, version] of theirs) seen.set(`${owner}\u0000${key}`, version);
  const newer: Delta[] = [];
  for (const m of stores) {
    for (const d of m.values()) {
      if (d.version > (seen.get(`${d.owner}\u0000${d.key}`) ?? 0)) newer.push(d);
    }
  }
  const sign = ordering === 'precise-oldest' ? 1 : -1;
  newer.sort((a, b) => sign * (a.at - b.at) || a.owner - b.owner || a.version - b.version);
  const deltas = newer.slice(0, mtu);
  return { deltas, cut: newer.length > deltas.length, backlog: newer.length - deltas.length };
}
