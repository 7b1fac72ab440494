import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFailures, decodeTotem, encodedBytes, encodeTotem, U48_MAX } from './codec.ts';
import { datagramPayloadBytes, TOTEM_DEFAULTS, type TotemConfig } from './config.ts';
import { SendQueue } from './flow.ts';
import type { Item, Mcast, RingId, TotemMsg } from './types.ts';
import { checkMessage, datagramBytes } from './wire.ts';

const config: TotemConfig = { ...TOTEM_DEFAULTS, id: 1, members: [1, 2, 3] };
const mtu = config.mtuBytes;
const limits = { retransmitEntriesMax: 30, membersMax: 32, mtuBytes: mtu };

const id = fc.integer({ min: 1, max: 0xffff_ffff });
const u48 = fc.integer({ min: 0, max: U48_MAX });
const seq = fc.integer({ min: 1, max: U48_MAX });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const ring: fc.Arbitrary<RingId> = fc.record({ seq: u48, rep: id });
const origin = fc.record({ node: id, boot: u32, n: seq });
const item: fc.Arbitrary<Item> = fc
  .record({
    origin,
    parts: fc.integer({ min: 1, max: 800 }),
    data: fc.uint8Array({ maxLength: 300 }),
    at: fc.nat(),
  })
  .map(({ origin, parts, data, at }) => ({ origin, parts, part: at % parts, data }));
/** Items the core would pack: within the mtu by its own byte model. */
const items = fc
  .array(item, { minLength: 1, maxLength: 12 })
  .map((xs) => {
    const out: Item[] = [];
    for (const x of xs) if (datagramBytes([...out, x]) <= mtu) out.push(x);
    return out;
  })
  .filter((xs) => xs.length > 0);
const mode = fc.constantFrom('agreed' as const, 'safe' as const);
const plain: fc.Arbitrary<Mcast> = fc.record({
  type: fc.constant('mcast' as const),
  ring,
  seq,
  sender: id,
  mode,
  items,
  old: fc.constant(null),
});
/** A Recovery re-send: no items of its own, one datagram of the old ring inside. */
const recovered: fc.Arbitrary<Mcast> = fc.record({
  type: fc.constant('mcast' as const),
  ring,
  seq,
  sender: id,
  mode,
  items: fc.constant([]),
  old: plain,
});
const ids = (max: number) => fc.uniqueArray(id, { maxLength: max });
const entry = fc.record({ id, oldRing: ring, aru: u48, highSeq: u48, delivered: u48 });
const msg: fc.Arbitrary<TotemMsg> = fc.oneof(
  plain,
  recovered,
  fc.record({
    type: fc.constant('token' as const),
    ring,
    tokenSeq: u48,
    seq: u48,
    aru: u48,
    aruId: fc.oneof(fc.constant(0), id),
    rtr: fc.array(seq, { maxLength: 30 }),
    fcc: u32,
    backlog: u32,
    recovery: fc.boolean(),
  }),
  fc.record({
    type: fc.constant('join' as const),
    sender: id,
    procs: ids(32),
    failed: ids(32),
    ringSeq: u48,
  }),
  fc.record({
    type: fc.constant('commit' as const),
    ring,
    members: ids(32),
    entries: fc.array(entry, { maxLength: 32 }),
    rotation: fc.constantFrom(1, 2),
  }),
  fc.record({ type: fc.constant('probe' as const), ring }),
  fc.record({ type: fc.constant('ack' as const), ring, tokenSeq: u48 }),
  fc.record({ type: fc.constant('release' as const), ring }),
);

describe('Totem wire codec', () => {
  it('decode(encode(m)) = m, and encodedBytes is the exact size', () => {
    fc.assert(
      fc.property(msg, (m) => {
        const bytes = encodeTotem(m);
        expect(bytes.length).toBe(encodedBytes(m));
        expect(decodeTotem(bytes)).toEqual({ ok: true, msg: m });
      }),
      { numRuns: 2000 },
    );
  });

  it('every message the core may send fits the mtu it assumes (1,400 B)', () => {
    fc.assert(
      fc.property(msg, (m) => {
        expect(encodeTotem(m).length).toBeLessThanOrEqual(mtu);
      }),
      { numRuns: 2000 },
    );
  });

  it('the send queue’s datagrams, fragments and their Recovery re-sends fit the mtu', () => {
    const q = new SendQueue(100, 1 << 22, datagramPayloadBytes(config), mtu);
    let n = 0;
    for (const size of [1, 100, 1000, mtu, 5000, 1 << 20, 100, 100, 100]) {
      q.push({ node: 7, boot: 0xffff_ffff, n: U48_MAX - 100 + ++n }, 'safe', new Uint8Array(size));
    }
    let datagrams = 0;
    for (let p = q.take(); p !== undefined; p = q.take()) {
      const old: Mcast = {
        type: 'mcast',
        ring: { seq: U48_MAX, rep: 0xffff_ffff },
        seq: U48_MAX,
        sender: 0xffff_ffff,
        mode: p.mode,
        items: p.items,
        old: null,
      };
      const resent: Mcast = { ...old, items: [], old };
      expect(encodeTotem(old).length).toBeLessThanOrEqual(mtu);
      expect(encodeTotem(resent).length).toBeLessThanOrEqual(mtu);
      datagrams++;
    }
    expect(datagrams).toBeGreaterThan(780);
  });

  it('what decodes passes the core’s own checks', () => {
    fc.assert(
      fc.property(msg, (m) => {
        const d = decodeTotem(encodeTotem(m));
        if (!d.ok) throw new Error(d.reason);
        const checked = checkMessage(d.msg, limits);
        // Only cross-field rules may refuse a decodable message: a token's aru or retransmit
        // entry above its seq, a commit whose ring is not its lowest member's or whose entry
        // has an aru above its highest seq.
        if (checked.ok) expect(checked.msg).toEqual(m);
        else if (m.type === 'token') expect(checked.reason).toBe('bad-token');
        else expect([m.type, checked.reason]).toEqual(['commit', 'malformed']);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses every truncation and any trailing byte, with a reason', () => {
    fc.assert(
      fc.property(msg, fc.nat(), (m, cut) => {
        const bytes = encodeTotem(m);
        const short = decodeTotem(bytes.subarray(0, cut % bytes.length));
        expect(short.ok).toBe(false);
        const long = decodeTotem(new Uint8Array([...bytes, 0]));
        expect(long).toEqual({ ok: false, reason: 'trailing-bytes' });
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on arbitrary bytes; refusals name a known reason', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const d = decodeTotem(bytes);
        if (!d.ok) expect(decodeFailures).toContain(d.reason);
      }),
      { numRuns: 5000 },
    );
  });

  it('names the reason for specific malformations', () => {
    const probe = encodeTotem({ type: 'probe', ring: { seq: 3, rep: 1 } });
    expect(decodeTotem(new Uint8Array())).toEqual({ ok: false, reason: 'empty' });
    expect(decodeTotem(new Uint8Array([99, ...probe.subarray(1)]))).toEqual({
      ok: false,
      reason: 'unknown-code',
    });
    const join = encodeTotem({ type: 'join', sender: 2, procs: [1, 2], failed: [], ringSeq: 4 });
    const zero = join.slice();
    zero.fill(0, 1, 5);
    expect(decodeTotem(zero)).toEqual({ ok: false, reason: 'bad-node-id' });
    const many = join.slice();
    many[11] = 0xff; // procs count far above what is left
    expect(decodeTotem(many)).toEqual({ ok: false, reason: 'bad-count' });
    const m: Mcast = {
      type: 'mcast',
      ring: { seq: 1, rep: 1 },
      seq: 1,
      sender: 1,
      mode: 'agreed',
      items: [{ origin: { node: 1, boot: 1, n: 1 }, part: 0, parts: 1, data: new Uint8Array(3) }],
      old: null,
    };
    const flags = encodeTotem(m);
    flags[21] = 0x80;
    expect(decodeTotem(flags)).toEqual({ ok: false, reason: 'bad-flags' });
    const frag = encodeTotem(m);
    frag[24 + 14 + 3] = 5; // part 5 of 1
    expect(decodeTotem(frag)).toEqual({ ok: false, reason: 'bad-fragment' });
  });

  it('refuses to encode what no valid message holds', () => {
    expect(() => encodeTotem({ type: 'ack', ring: { seq: 1, rep: 1 }, tokenSeq: -1 })).toThrow();
    expect(() => encodeTotem({ type: 'probe', ring: { seq: 2 ** 48, rep: 1 } })).toThrow();
  });
});
