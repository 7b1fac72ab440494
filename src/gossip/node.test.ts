import { describe, expect, it } from 'vitest';
import type { Outgoing } from '../kernel/envelope.ts';
import type { NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import { GOSSIP_DEFAULTS, type GossipConfig } from './config.ts';
import { applyGossipPersist, initialGossipDurable } from './index.ts';
import { GossipNode } from './node.ts';
import type {
  GossipDeliver,
  GossipDurable,
  GossipEvent,
  GossipMsg,
  GossipReply,
  Rumour,
} from './types.ts';
import { isStreamMessage } from './types.ts';
import { msgBytes } from './wire.ts';

interface Drained {
  persisted: number[];
  /** Messages, each with the number of persist items that were in its batch. */
  sent: (Outgoing<GossipMsg> & { afterPersist: number })[];
  replies: GossipReply[];
  delivered: GossipDeliver[];
  events: GossipEvent[];
  durable: GossipDurable;
}

function node(id: NodeId, over: Partial<GossipConfig> = {}, durable?: GossipDurable, now = 0) {
  const config: GossipConfig = { ...GOSSIP_DEFAULTS, id, seeds: [], tags: '', ...over };
  return new GossipNode(config, Rng.fromSeed(id), durable, now);
}

function drain(n: GossipNode, durable: GossipDurable = initialGossipDurable): Drained {
  const d: Drained = { persisted: [], sent: [], replies: [], delivered: [], events: [], durable };
  for (let rd = n.ready(); rd !== undefined; rd = n.ready()) {
    for (const p of rd.persist) {
      d.durable = applyGossipPersist(d.durable, p);
      d.persisted.push(p.incarnation);
    }
    for (const m of [...rd.early, ...rd.messages])
      d.sent.push({ ...m, afterPersist: rd.persist.length });
    d.replies.push(...rd.replies.map((r) => r.reply));
    d.delivered.push(...rd.deliver);
    d.events.push(...rd.events);
    n.advance();
  }
  return d;
}

/** A standalone node that already knows `others` as alive members. */
function withMembers(id: NodeId, others: NodeId[], over: Partial<GossipConfig> = {}) {
  const n = node(id, over);
  const members = [id, ...others].map((m) => ({
    id: m,
    incarnation: 1,
    status: 'alive' as const,
    tags: '',
  }));
  n.receive(0, others[0]!, {
    type: 'push-pull',
    reply: false,
    join: false,
    members,
    heads: [],
    events: [],
  });
  drain(n);
  return n;
}

describe('GossipNode: incarnation (no stuck dead nodes)', () => {
  it('persists its incarnation before the refutation that announces it leaves (SWIM 4.2)', () => {
    const n = withMembers(1, [2, 3]);
    n.receive(10, 2, {
      type: 'gossip',
      rumours: [{ kind: 'suspect', id: 1, incarnation: 1, from: 2 }],
    });
    const d = drain(n);
    expect(n.selfIncarnation).toBe(2);
    expect(d.persisted).toEqual([2]);
    n.tick(200);
    const sent = drain(n).sent;
    const alive = sent.find(
      (m) =>
        'rumours' in m.msg &&
        m.msg.rumours.some((r) => r.kind === 'alive' && r.id === 1 && r.incarnation === 2),
    );
    expect(alive).toBeDefined();
  });

  it('resumes above the persisted incarnation after a restart, and persists that first', () => {
    const first = node(1, {}, undefined);
    const d1 = drain(first);
    expect(d1.durable.incarnation).toBe(1);
    const again = node(1, {}, { incarnation: 7, eventSeq: 3 });
    expect(again.selfIncarnation).toBe(8);
    expect(drain(again).persisted).toEqual([8]);
  });

  it('re-gossips the accusation when a member we hold dead sends a stale alive, to it directly', () => {
    const n = withMembers(1, [2, 3]);
    n.receive(10, 3, {
      type: 'gossip',
      rumours: [{ kind: 'dead', id: 2, incarnation: 4, from: 3 }],
    });
    drain(n);
    expect(n.member(2)?.status).toBe('dead');
    n.receive(20, 2, {
      type: 'gossip',
      rumours: [{ kind: 'alive', id: 2, incarnation: 3, tags: '' }],
    });
    const back = drain(n).sent.filter((m) => m.to === 2);
    expect(back.map((m) => m.msg)).toContainEqual({
      type: 'gossip',
      rumours: [{ kind: 'dead', id: 2, incarnation: 4, from: 1 }],
    });
    expect(n.member(2)?.status).toBe('dead');
  });
});

describe('GossipNode: probing and suspicion (SWIM 3.1, Lifeguard)', () => {
  it('suspects a member that acks neither directly nor indirectly, and declares it dead by the longest timeout', () => {
    const n = withMembers(1, [2]);
    let t = 0;
    let suspected = false;
    let dead = false;
    for (; t < 60_000 && !dead; t += 50) {
      n.tick(t);
      const d = drain(n);
      if (d.events.some((e) => e.type === 'member' && e.about === 2 && e.status === 'suspect'))
        suspected = true;
      if (d.events.some((e) => e.type === 'verdict' && e.about === 2)) dead = true;
    }
    expect(suspected && dead).toBe(true);
    // n = 2: the shortest suspicion is 4 s, the longest 24 s; no confirmations come.
    expect(t).toBeLessThan(3_000 + 24_000 + 1_000);
    expect(t).toBeGreaterThan(4_000);
  });

  it('stretches its own probe interval when its health score rises (Lifeguard 4.3)', () => {
    const n = withMembers(1, [2, 3, 4]);
    const pings = (from: number, to: number) => {
      let count = 0;
      for (let t = from; t < to; t += 10) {
        n.tick(t);
        count += drain(n).sent.filter((m) => m.msg.type === 'ping').length;
        // Answer no ping-req: missed nacks raise the health score.
      }
      return count;
    };
    const early = pings(0, 5_000);
    expect(n.healthScore).toBeGreaterThan(0);
    const later = pings(20_000, 40_000) / 4;
    expect(later).toBeLessThan(early);
  });

  it('treats a tick far past its deadline as its own pause: no verdict from that probe, health up', () => {
    const n = withMembers(1, [2]);
    n.tick(0);
    drain(n);
    const before = n.healthScore;
    n.tick(5_000); // deadline was <= 1 s away
    const d = drain(n);
    expect(d.events.some((e) => e.type === 'paused')).toBe(true);
    expect(d.events.some((e) => e.type === 'member' && e.status === 'suspect')).toBe(false);
    expect(n.healthScore).toBe(before + 1);
  });
});

describe('GossipNode: suspicion confirmations (Lifeguard 4.2)', () => {
  /**
   * Node 1 hears "3 suspects 5" relayed by 2 and then by 4, or (`independent`) a second
   * suspicion of 5 by 4 itself. Every ping it sends is acked, so it suspects nobody itself.
   * n = 5: 4 s shortest, 24 s longest, 2 confirmations needed; one brings it to 11.4 s.
   */
  function statusOf5At12s(independent: boolean, until = 12_000, lifeguard = true) {
    const n = withMembers(1, [2, 3, 4, 5], { lifeguard });
    n.receive(0, 2, {
      type: 'gossip',
      rumours: [{ kind: 'suspect', id: 5, incarnation: 1, from: 3 }],
    });
    const second = independent ? 4 : 3;
    n.receive(0, 4, {
      type: 'gossip',
      rumours: [{ kind: 'suspect', id: 5, incarnation: 1, from: second }],
    });
    drain(n);
    for (let t = 0; t <= until; t += 50) {
      n.tick(t);
      for (const m of drain(n).sent) {
        if (m.msg.type === 'ping') n.receive(t, m.to, { type: 'ack', seq: m.msg.seq, rumours: [] });
      }
      drain(n);
    }
    return n.member(5)?.status;
  }

  it('counts the accuser a rumour names, not the member that relayed it', () => {
    expect(statusOf5At12s(false)).toBe('suspect');
  });

  it('an independent accuser shortens the suspicion', () => {
    expect(statusOf5At12s(true)).toBe('dead');
  });

  it('with Lifeguard off every suspicion lasts the shortest timeout (4 s at n = 5), confirmed or not', () => {
    expect(statusOf5At12s(false, 3_900, false)).toBe('suspect');
    expect(statusOf5At12s(false, 4_100, false)).toBe('dead');
    expect(statusOf5At12s(false, 4_100, true)).toBe('suspect');
  });
});

describe('GossipNode: Lifeguard off (the baseline it is measured against)', () => {
  it('keeps its health score at 0 when nacks are missed, so its probe interval never stretches', () => {
    for (const lifeguard of [true, false]) {
      const n = withMembers(1, [2, 3, 4], { lifeguard });
      for (let t = 0; t < 5_000; t += 10) {
        n.tick(t);
        drain(n);
      }
      if (lifeguard) expect(n.healthScore).toBeGreaterThan(0);
      else expect(n.healthScore).toBe(0);
    }
  });

  it('relays an indirect probe without the nack', () => {
    const nacks = (lifeguard: boolean) => {
      const n = withMembers(1, [2, 3], { lifeguard });
      n.receive(0, 2, { type: 'ping-req', seq: 9, target: 3, rumours: [] });
      let count = 0;
      for (let t = 0; t <= 1_000; t += 50) {
        n.tick(t);
        count += drain(n).sent.filter((m) => m.msg.type === 'nack' && m.to === 2).length;
      }
      return count;
    };
    expect(nacks(true)).toBe(1);
    expect(nacks(false)).toBe(0);
  });
});

describe('GossipNode: bounds and bad input', () => {
  it('refuses an event over eventBytesMax naming the limit, and stores nothing', () => {
    const n = node(1);
    drain(n);
    n.request(0, 9, { type: 'publish', name: 'x', payload: 'y'.repeat(1024) });
    const d = drain(n);
    expect(d.replies).toEqual([
      {
        type: 'refused',
        reason: { code: 'too-large', limit: 'eventBytesMax', max: 1024, got: 1025 },
      },
    ]);
    expect(d.delivered).toEqual([]);
    expect(n.eventHead(1)).toBe(0);
  });

  it('refuses tags over 512 bytes', () => {
    const n = node(1);
    n.request(0, 9, { type: 'set-tags', tags: 'é'.repeat(257) });
    expect(drain(n).replies).toEqual([
      { type: 'refused', reason: { code: 'too-large', limit: 'tagsBytesMax', max: 512, got: 514 } },
    ]);
  });

  it('drops and counts malformed messages and oversized ones, without throwing', () => {
    const n = withMembers(1, [2]);
    const bad: unknown[] = [
      null,
      { type: 'nope' },
      { type: 'ping', seq: -1, target: 1, rumours: [] },
      { type: 'gossip', rumours: [{ kind: 'alive', id: 0, incarnation: 1, tags: '' }] },
      { type: 'gossip', rumours: 'x' },
    ];
    for (const m of bad) n.receive(1, 2, m as GossipMsg);
    const big = {
      type: 'events',
      events: [{ origin: 2, seq: 1, name: '', payload: 'z'.repeat(2000) }],
    };
    n.receive(1, 2, big as GossipMsg);
    expect(n.stats.dropped.malformed).toBe(5);
    expect(n.stats.dropped['too-large']).toBe(1);
    expect(n.eventHead(2)).toBe(0);
  });

  it('rejects settings out of range with an error naming the setting', () => {
    expect(() => node(1, { probeTimeoutMs: 1_000 })).toThrow(
      /probeTimeoutMs .* must be below probeIntervalMs/,
    );
    expect(() => node(1, { membersMax: 20_000 })).toThrow(/membersMax must be at most 10000/);
    expect(() => node(1, { gossipNodes: 0 })).toThrow(/gossipNodes must be a positive integer/);
    expect(() => node(1, { packetBytesMax: 100 })).toThrow(/packetBytesMax must be in/);
  });

  it('keeps every datagram within the packet budget however much is queued', () => {
    const others = Array.from({ length: 60 }, (_, i) => i + 2);
    const n = node(1);
    const members = [1, ...others].map((m) => ({
      id: m,
      incarnation: 1,
      status: 'alive' as const,
      tags: 't'.repeat(500),
    }));
    n.receive(0, 2, {
      type: 'push-pull',
      reply: false,
      join: false,
      members,
      heads: [],
      events: [],
    });
    for (let i = 0; i < 20; i++)
      n.request(0, 9, { type: 'publish', name: 'e', payload: 'p'.repeat(1000) });
    let datagrams = 0;
    for (let t = 0; t < 3_000; t += 100) {
      n.tick(t);
      for (const m of drain(n).sent) {
        if (isStreamMessage(m.msg)) continue;
        datagrams++;
        expect(msgBytes(m.msg)).toBeLessThanOrEqual(1_400);
      }
    }
    expect(datagrams).toBeGreaterThan(20);
  });
});

describe('GossipNode: user events', () => {
  it('delivers in order per origin, holding back what comes early', () => {
    const n = withMembers(1, [2]);
    const e = (seq: number) => ({
      kind: 'event' as const,
      event: { origin: 2, seq, name: 'n', payload: `${seq}` },
    });
    n.receive(1, 2, { type: 'gossip', rumours: [e(1)] });
    n.receive(2, 2, { type: 'gossip', rumours: [e(3)] });
    expect(drain(n).delivered.map((d) => (d.type === 'event' ? d.event.seq : -1))).toEqual([1]);
    n.receive(3, 2, { type: 'gossip', rumours: [e(2)] });
    expect(drain(n).delivered.map((d) => (d.type === 'event' ? d.event.seq : -1))).toEqual([2, 3]);
  });

  it('gives a reader behind retention an explicit gap, never silence', () => {
    const n = withMembers(1, [2]);
    const e = (seq: number) => ({ origin: 2, seq, name: 'n', payload: '' });
    n.receive(1, 2, { type: 'events', events: [e(1)] });
    drain(n);
    // A peer that retains origin 2 only from 5 on and has delivered up to 6.
    n.receive(2, 2, {
      type: 'push-pull',
      reply: false,
      join: false,
      members: [],
      heads: [{ origin: 2, seq: 6, oldest: 5 }],
      events: [e(5), e(6)],
    });
    const d = drain(n).delivered;
    expect(d).toEqual([
      { type: 'gap', origin: 2, from: 2, to: 4 },
      { type: 'event', event: e(5) },
      { type: 'event', event: e(6) },
    ]);
  });

  it('declares a gap for a hole nobody fills within the hole timeout (its holders crashed)', () => {
    const n = withMembers(1, [2]);
    const e = (seq: number) => ({
      kind: 'event' as const,
      event: { origin: 3, seq, name: 'n', payload: '' },
    });
    n.receive(1, 2, { type: 'gossip', rumours: [e(1)] });
    n.receive(2, 2, { type: 'gossip', rumours: [e(4)] });
    expect(drain(n).delivered).toHaveLength(1);
    n.tick(2_000);
    expect(drain(n).delivered).toHaveLength(0);
    n.tick(5_100);
    expect(drain(n).delivered).toEqual([
      { type: 'gap', origin: 3, from: 2, to: 3 },
      { type: 'event', event: e(4).event },
    ]);
  });

  it('keeps at most eventsRetainedMax events', () => {
    const n = node(1, { eventsRetainedMax: 10 });
    for (let i = 0; i < 30; i++) n.request(i, 9, { type: 'publish', name: 'e', payload: `${i}` });
    const d = drain(n);
    expect(d.replies.filter((r) => r.type === 'published')).toHaveLength(30);
    expect(d.delivered).toHaveLength(30);
    n.receive(100, 2, {
      type: 'push-pull',
      reply: false,
      join: false,
      members: [],
      heads: [],
      events: [],
    });
    const reply = drain(n).sent.find((m) => m.msg.type === 'push-pull');
    expect(reply?.msg.type === 'push-pull' && reply.msg.events.length).toBe(10);
  });
});

describe('GossipNode: digest repair', () => {
  it('answers a peer whose digest slice is behind with the newer record at once', () => {
    const n = withMembers(1, [2, 3]);
    n.receive(5, 3, {
      type: 'gossip',
      rumours: [{ kind: 'dead', id: 2, incarnation: 1, from: 3 }],
    });
    drain(n);
    n.receive(10, 3, {
      type: 'gossip',
      rumours: [],
      digest: { hash: 0, members: 3, entries: [{ id: 2, incarnation: 1, gone: false }], heads: [] },
    });
    const sent = drain(n)
      .sent.filter((m) => m.to === 3)
      .map((m) => m.msg);
    expect(sent).toContainEqual({
      type: 'gossip',
      rumours: [{ kind: 'dead', id: 2, incarnation: 1, from: 1 }],
    });
  });

  it('starts a push-pull with a peer still ahead on one entry after a rumour lifetime', () => {
    const n = withMembers(1, [2, 3]);
    const digest = {
      hash: 1,
      members: 4,
      entries: [{ id: 9, incarnation: 1, gone: false }],
      heads: [],
    };
    n.receive(10, 2, { type: 'gossip', rumours: [], digest });
    expect(drain(n).sent.some((m) => m.msg.type === 'push-pull')).toBe(false);
    n.receive(2_000, 2, { type: 'gossip', rumours: [], digest });
    const pp = drain(n).sent.filter((m) => m.msg.type === 'push-pull');
    expect(pp.map((m) => m.to)).toEqual([2]);
  });
});

const aboutOne = (r: Rumour) => r.kind === 'alive' && r.id === 1;

describe('GossipNode: joining', () => {
  /** A node joining through seed 2, given the seed's reply listing `others` alive. */
  function joined(others: NodeId[], over: Partial<GossipConfig> = {}) {
    const n = node(1, { seeds: [2], ...over });
    n.tick(0);
    const asked = drain(n).sent.filter((m) => m.msg.type === 'push-pull');
    expect(asked.map((m) => m.to)).toEqual([2]);
    const members = [2, ...others].map((id) => ({
      id,
      incarnation: 3,
      status: 'alive' as const,
      tags: '',
    }));
    n.receive(5, 2, {
      type: 'push-pull',
      reply: true,
      join: false,
      members,
      heads: [],
      events: [],
    });
    return { n, sent: drain(n).sent };
  }

  it("tells every member of the seed's reply of itself at once, one datagram each, not the seed", () => {
    const { n, sent } = joined([3, 4, 5, 6]);
    expect(n.currentMode).toBe('member');
    const told = sent.filter(
      (m) =>
        m.msg.type === 'gossip' &&
        m.msg.rumours.length === 1 &&
        m.msg.rumours[0]!.kind === 'alive' &&
        m.msg.rumours[0]!.id === 1,
    );
    expect(told.map((m) => m.to).sort()).toEqual([3, 4, 5, 6]);
    // Outside the retransmit queue: the first gossip round still carries our alive.
    n.tick(5);
    const round = drain(n).sent.filter((m) => m.msg.type === 'gossip');
    expect(round.length).toBeGreaterThan(0);
    expect(
      round.every(
        (m) =>
          m.msg.type === 'gossip' && m.msg.rumours.some((r) => r.kind === 'alive' && r.id === 1),
      ),
    ).toBe(true);
  });

  it('announces itself too when a member alone is told to join (an agent started without seeds)', () => {
    const n = node(1);
    expect(n.currentMode).toBe('member');
    n.request(0, 1, { type: 'join', seeds: [2] });
    expect(
      drain(n)
        .sent.filter((m) => m.msg.type === 'push-pull')
        .map((m) => m.to),
    ).toEqual([2]);
    const members = [2, 3, 4].map((id) => ({
      id,
      incarnation: 1,
      status: 'alive' as const,
      tags: '',
    }));
    n.receive(5, 2, {
      type: 'push-pull',
      reply: true,
      join: false,
      members,
      heads: [],
      events: [],
    });
    const told = drain(n).sent.filter(
      (m) => m.msg.type === 'gossip' && m.msg.rumours.length === 1 && aboutOne(m.msg.rumours[0]!),
    );
    expect(told.map((m) => m.to).sort()).toEqual([3, 4]);
    // A periodic exchange's reply is no join: nothing is announced.
    n.tick(40_000);
    const periodic = drain(n).sent.find((m) => m.msg.type === 'push-pull');
    expect(periodic).toBeDefined();
    n.receive(40_001, periodic!.to, {
      type: 'push-pull',
      reply: true,
      join: false,
      members: [{ id: 5, incarnation: 1, status: 'alive', tags: '' }],
      heads: [],
      events: [],
    });
    expect(
      drain(n).sent.filter(
        (m) => m.msg.type === 'gossip' && m.msg.rumours.length === 1 && aboutOne(m.msg.rumours[0]!),
      ),
    ).toEqual([]);
  });

  it('tells at most joinAnnounceNodes members, and none with 0', () => {
    const others = Array.from({ length: 30 }, (_, i) => i + 3);
    const some = joined(others, { joinAnnounceNodes: 5 }).sent.filter(
      (m) => m.msg.type === 'gossip',
    );
    expect(new Set(some.map((m) => m.to)).size).toBe(5);
    expect(
      joined(others, { joinAnnounceNodes: 0 }).sent.filter((m) => m.msg.type === 'gossip'),
    ).toEqual([]);
  });
});

describe('GossipNode: spreading a death', () => {
  it('gossips a death it learns at once, not at its next round', () => {
    const n = withMembers(1, [2, 3, 4]);
    n.tick(0);
    drain(n);
    expect(n.deadline()).toBeGreaterThan(50);
    n.receive(50, 2, {
      type: 'gossip',
      rumours: [{ kind: 'dead', id: 3, incarnation: 1, from: 2 }],
    });
    expect(n.deadline()).toBe(50);
    n.tick(50);
    const sent = drain(n).sent.filter(
      (m) => m.msg.type === 'gossip' && m.msg.rumours.some((r) => r.kind === 'dead' && r.id === 3),
    );
    expect(sent.length).toBeGreaterThan(0);
  });
});
