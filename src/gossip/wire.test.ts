import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GossipMsg, MemberRecord, Rumour, UserEvent } from './types.ts';
import { decodeMsg, encodeMsg, msgBytes, utf8Bytes } from './wire.ts';

const id = fc.integer({ min: 1, max: 0xffff_ffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const text = (max: number) => fc.string({ unit: 'binary', maxLength: max });
const event: fc.Arbitrary<UserEvent> = fc.record({
  origin: id,
  seq: id,
  name: text(40),
  payload: text(200),
});
const rumour: fc.Arbitrary<Rumour> = fc.oneof(
  fc.record({ kind: fc.constant('alive' as const), id, incarnation: u32, tags: text(100) }),
  fc.record({ kind: fc.constant('suspect' as const), id, incarnation: u32, from: id }),
  fc.record({ kind: fc.constant('dead' as const), id, incarnation: u32, from: id }),
  fc.record({ kind: fc.constant('leave' as const), id, incarnation: u32, ltime: u32 }),
  fc.record({ kind: fc.constant('event' as const), event }),
);
const rumours = fc.array(rumour, { maxLength: 8 });
const head = fc.record({ origin: id, seq: u32 });
const member: fc.Arbitrary<MemberRecord> = fc.record({
  id,
  incarnation: u32,
  status: fc.constantFrom('alive' as const, 'suspect' as const, 'dead' as const, 'left' as const),
  tags: text(50),
});
const digest = fc.record({
  hash: u32,
  members: u32,
  entries: fc.array(fc.record({ id, incarnation: u32, gone: fc.boolean() }), { maxLength: 16 }),
  heads: fc.array(head, { maxLength: 8 }),
});
const msg: fc.Arbitrary<GossipMsg> = fc.oneof(
  fc.record({ type: fc.constant('ping' as const), seq: u32, target: id, rumours }),
  fc.record({ type: fc.constant('ack' as const), seq: u32, rumours }),
  fc.record({ type: fc.constant('nack' as const), seq: u32 }),
  fc.record({ type: fc.constant('ping-req' as const), seq: u32, target: id, rumours }),
  fc.record({ type: fc.constant('gossip' as const), rumours }),
  fc.record({ type: fc.constant('gossip' as const), rumours, digest }),
  fc.record({ type: fc.constant('seen' as const), events: fc.array(head, { maxLength: 10 }) }),
  fc.record({
    type: fc.constant('push-pull' as const),
    reply: fc.boolean(),
    join: fc.boolean(),
    members: fc.array(member, { maxLength: 10 }),
    heads: fc.array(fc.record({ origin: id, seq: u32, oldest: u32 }), { maxLength: 5 }),
    events: fc.array(event, { maxLength: 5 }),
  }),
  fc.record({ type: fc.constant('events' as const), events: fc.array(event, { maxLength: 5 }) }),
);

describe('gossip wire format and byte model', () => {
  it('encodes every message in at most the bytes the model says, and decodes it back', () => {
    fc.assert(
      fc.property(msg, (m) => {
        const bytes = encodeMsg(m);
        expect(bytes.length).toBeLessThanOrEqual(msgBytes(m));
        expect(decodeMsg(bytes)).toEqual(m);
      }),
      { numRuns: 2000 },
    );
  });

  it('counts UTF-8 bytes exactly, surrogate pairs and lone surrogates included', () => {
    fc.assert(
      fc.property(text(50), (s) => {
        expect(utf8Bytes(s)).toBe(new TextEncoder().encode(s).length);
      }),
    );
    expect(utf8Bytes('é😀\ud800x')).toBe(2 + 4 + 3 + 1);
  });

  it('rejects every truncation and every trailing byte of a valid message', () => {
    fc.assert(
      fc.property(msg, (m) => {
        const bytes = encodeMsg(m);
        for (let n = 0; n < bytes.length; n++)
          expect(decodeMsg(bytes.subarray(0, n))).toBeUndefined();
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        expect(decodeMsg(longer)).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const m = decodeMsg(b);
        if (m !== undefined) expect(encodeMsg(m)).toEqual(b);
      }),
      { numRuns: 5000 },
    );
  });

  it('rejects unknown codes, node id 0 and invalid UTF-8', () => {
    expect(decodeMsg(Uint8Array.of(99))).toBeUndefined();
    const ping = encodeMsg({ type: 'ping', seq: 1, target: 7, rumours: [] });
    ping[8] = 0; // target's low byte: id 7 becomes 0
    expect(decodeMsg(ping)).toBeUndefined();
    const alive = encodeMsg({
      type: 'gossip',
      rumours: [{ kind: 'alive', id: 1, incarnation: 1, tags: 'ab' }],
    });
    alive[alive.length - 3] = 0xff; // first tag byte: not UTF-8
    expect(decodeMsg(alive)).toBeUndefined();
  });
});
