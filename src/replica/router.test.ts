import { describe, expect, it } from 'vitest';
import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import { Rng } from '../kernel/rng.ts';
import type { KvResult } from '../kv/machine.ts';
import { initialMultiDurable } from '../paxos/multi/durable.ts';
import { MULTI_PAXOS_DEFAULTS } from '../paxos/multi/node.ts';
import { multiPaxosKvBinding, raftKvBinding } from './bindings.ts';
import { MEMBER_PREFIX } from './members.ts';
import { defaultMultiKvReplicaOptions, MultiPaxosKvReplica } from './multipaxos-kv.ts';
import { RaftKvReplica } from './raft-kv.ts';
import type { CallAnswer, Refusal } from './refusal.ts';
import { defaultRouterOptions, Router, type RouterOptions } from './router.ts';
import type { FwdCall, FwdReply } from './router-msgs.ts';
import {
  call,
  drain,
  type Msg,
  type RaftRouter,
  type Said,
  testRaftOptions,
} from './testing/routed.ts';

/**
 * The call router on its own, every peer scripted by hand and time moved by hand: what the
 * server's peer-forward tests checked against real sockets and timers, deterministically.
 * Node 1 is the router under test in a cluster {1, 2, 3}.
 */
function scripted(options: Partial<RouterOptions> = {}) {
  const replica = RaftKvReplica.create(
    1,
    { voters: [1, 2, 3], learners: [] },
    testRaftOptions,
    Rng.fromSeed(1),
  );
  const router: RaftRouter = new Router(
    replica,
    raftKvBinding<RaftKvReplica>((r) => r),
    {
      ...defaultRouterOptions,
      peers: [1, 2, 3],
      ...options,
    },
  );
  let now = 0;
  const said: Said = { sent: [], replies: [], answers: [], notices: [] };
  const t = {
    router,
    said,
    get now() {
      return now;
    },
    /** Moves time to `at` and ticks the router. */
    tick(at: number) {
      now = at;
      router.tick(now);
      drain(router, undefined, said);
    },
    from(peer: NodeId, msg: Msg) {
      router.receive(now, peer, msg);
      drain(router, undefined, said);
    },
    ask(client: number, req: ReturnType<typeof call>) {
      router.request(now, client, req);
      drain(router, undefined, said);
    },
    /** Makes `peer` this node's leader in `term` (a Raft heartbeat). */
    lead(peer: NodeId, term: number) {
      t.from(peer, { type: 'heartbeat', term, commit: 0, round: term });
      expect(router.leader()).toBe(peer);
    },
    /** The `fwdCall`s sent to `peer` so far. */
    forwarded(peer: NodeId): FwdCall[] {
      return said.sent
        .filter((m) => m.to === peer && m.msg.type === 'fwdCall')
        .map((m) => m.msg as FwdCall);
    },
    answers(client: number): CallAnswer[] {
      return said.answers.filter((a) => a.client === client).map((a) => a.answer);
    },
    /** A reply from `peer` to call `id`, to its latest forward unless `attempt` says. */
    reply(peer: NodeId, id: number, outcome: CallAnswer, attempt?: number) {
      const latest = t
        .forwarded(peer)
        .filter((m) => m.id === id)
        .at(-1)?.attempt;
      const msg: FwdReply = { type: 'fwdReply', id, attempt: attempt ?? latest ?? 1, outcome };
      t.from(peer, msg);
    },
  };
  return t;
}

const putResult: KvResult = { f: 'put', revision: 7, version: 1 };
const put = { f: 'put', key: 'a', value: '1' } as const;
const get = { f: 'get', key: 'a' } as const;

function refusal(r: Refusal): CallAnswer {
  return { type: 'refused', refusal: r };
}

describe('a follower forwards a call to the leader it knows (one hop)', () => {
  it("asks again under the write's session when the leader answers outcome unknown", () => {
    const t = scripted({ retryPauseMs: 25, unknownRetriesMax: 2 });
    t.lead(3, 1);
    t.ask(7, call(1, put, { session: 4, seq: 9 }));
    const unknown = refusal({ type: 'outcomeUnknown', reason: 'the leader stepped down' });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const sent = t.forwarded(3);
      expect(sent).toHaveLength(attempt);
      expect(sent[attempt - 1]).toMatchObject({ session: 4, seq: 9, op: put });
      t.reply(3, sent[attempt - 1]?.id ?? -1, unknown);
      t.tick(t.now + 25);
    }
    // Two re-forwards (unknownRetriesMax), then the client hears the outcome is unknown.
    expect(t.forwarded(3)).toHaveLength(3);
    expect(t.answers(7)).toEqual([unknown]);
  });

  it('sends the call with what is left of its deadline, and ends it with the leader reply only', () => {
    const t = scripted();
    t.lead(3, 1);
    t.tick(100);
    t.ask(7, call(1, put, { session: 1, seq: 1, timeoutMs: 1000 }));
    const [sent] = t.forwarded(3);
    expect(sent).toMatchObject({ kind: 'write', session: 1, seq: 1, op: put, timeoutMs: 1000 });
    // Member 2 is not who the call went to; a malformed reply is no reply.
    t.reply(2, sent?.id ?? -1, { type: 'result', result: { ...putResult, revision: 99 } });
    t.from(3, { type: 'fwdReply', id: sent?.id ?? -1, outcome: { type: 'x' } } as unknown as Msg);
    expect(t.answers(7)).toEqual([]);
    expect(t.said.notices).toContainEqual(expect.objectContaining({ type: 'dropped', from: 3 }));
    t.reply(3, sent?.id ?? -1, { type: 'result', result: putResult });
    expect(t.answers(7)).toEqual([{ type: 'result', result: putResult }]);
    // A duplicate, and a reply to a call that never was, change nothing.
    t.reply(3, sent?.id ?? -1, { type: 'result', result: { ...putResult, revision: 50 } });
    t.reply(3, 12345, { type: 'result', result: putResult });
    expect(t.answers(7)).toHaveLength(1);
    expect(t.router.pendingCalls()).toBe(0);
  });

  it('answers a forwarded write from its own apply once a commit hint proves it committed', () => {
    const t = scripted();
    t.lead(3, 1);
    const op = { f: 'put', key: 'h', value: 'hinted' } as const;
    t.ask(7, call(1, op, { session: 9, seq: 1 }));
    expect(t.forwarded(3)).toHaveLength(1);
    const entry = { index: 1, term: 1, kind: 'normal', data: { session: 9, seq: 1, op } } as const;
    t.from(3, { type: 'append', term: 1, prevIndex: 0, prevTerm: 0, entries: [entry], commit: 0 });
    expect(t.answers(7)).toEqual([]); // held: not yet known to be committed
    t.from(3, { type: 'commitHint', term: 1, index: 1 });
    expect(t.answers(7)).toEqual([
      { type: 'result', result: expect.objectContaining({ f: 'put', version: 1 }) },
    ]);
    // The leader's answer, when it comes, finds the call ended.
    const id = t.forwarded(3)[0]?.id ?? -1;
    t.reply(3, id, { type: 'result', result: putResult });
    expect(t.answers(7)).toHaveLength(1);
  });

  it("passes the leader's final refusals on as they are, and never proposes locally", () => {
    const t = scripted();
    t.lead(3, 1);
    const finals: Refusal[] = [
      { type: 'overloaded', reason: 'uncommitted-cap' },
      { type: 'outcomeUnknown', reason: 'a leader changed' },
      { type: 'invalid', reason: 'bad op' },
      { type: 'conflict', reason: 'no' },
    ];
    finals.forEach((r, i) => {
      t.ask(10 + i, call(10 + i, { f: 'delete', key: 'a' }));
      const sent = t.forwarded(3)[i];
      t.reply(3, sent?.id ?? -1, refusal(r));
      expect(t.answers(10 + i)).toEqual([refusal(r)]);
    });
    expect(t.said.notices.filter((n) => n.type === 'proposed')).toEqual([]);
  });

  it('asks again after the pause when a read lost its outcome: it changed nothing', () => {
    const t = scripted({ retryPauseMs: 25 });
    t.lead(3, 1);
    t.ask(7, call(1, get));
    t.reply(3, t.forwarded(3)[0]?.id ?? -1, refusal({ type: 'outcomeUnknown', reason: 'gone' }));
    expect(t.answers(7)).toEqual([]);
    t.tick(24);
    expect(t.forwarded(3)).toHaveLength(1);
    t.tick(25);
    expect(t.forwarded(3)).toHaveLength(2);
  });

  it('follows a new leader when the old one says it stepped down', () => {
    const t = scripted({ retryPauseMs: 25 });
    t.lead(3, 1);
    t.ask(7, call(1, put, { session: 4, seq: 1 }));
    t.lead(2, 2);
    t.reply(3, t.forwarded(3)[0]?.id ?? -1, refusal({ type: 'notLeader', leader: 2 }));
    t.tick(25);
    const [again] = t.forwarded(2);
    expect(again).toMatchObject({ session: 4, seq: 1, op: put });
    t.reply(2, again?.id ?? -1, { type: 'result', result: putResult });
    expect(t.answers(7)).toEqual([{ type: 'result', result: putResult }]);
  });

  it('ends a call at its deadline when the leader stays silent, and early when its link breaks', () => {
    const t = scripted();
    t.lead(3, 1);
    t.ask(7, call(1, get, { timeoutMs: 1000 }));
    t.ask(8, call(2, put, { session: 2, seq: 1, timeoutMs: 1000 }));
    expect(t.router.deadline()).toBeLessThanOrEqual(1000);
    t.tick(999);
    expect(t.said.answers).toEqual([]);
    t.tick(1000);
    // The read changed nothing; the write may have applied at the leader.
    expect(t.answers(7)).toEqual([refusal({ type: 'retry', reason: expect.any(String) })]);
    expect(t.answers(8)).toEqual([refusal({ type: 'outcomeUnknown', reason: expect.any(String) })]);

    const u = scripted();
    u.lead(3, 1);
    u.ask(9, call(3, put, { session: 2, seq: 2 }));
    u.ask(10, call(4, get));
    u.router.linkChanged(10, 3, false);
    drain(u.router, undefined, u.said);
    expect(u.answers(9)).toEqual([refusal({ type: 'outcomeUnknown', reason: expect.any(String) })]);
    expect(u.answers(10)).toEqual([]); // a read is asked again after the pause
  });

  it('refuses with the leader as hint when its host could not send the call (no link)', () => {
    const t = scripted();
    t.lead(3, 1);
    t.ask(7, call(1, put));
    const sent = t.forwarded(3)[0];
    if (sent === undefined) throw new Error('nothing forwarded');
    t.router.unsent(t.now, 3, sent);
    drain(t.router, undefined, t.said);
    expect(t.answers(7)).toEqual([refusal({ type: 'notLeader', leader: 3 })]);
  });

  it('ends a call only with the reply to its attempt in flight, never a late one to an earlier', () => {
    const t = scripted({ retryPauseMs: 25 });
    t.lead(3, 1);
    t.ask(7, call(1, get, { timeoutMs: 1000 }));
    const first = t.forwarded(3)[0];
    expect(first?.attempt).toBe(1);
    // The leader is in a transfer: a passing refusal, asked again after the pause.
    t.reply(3, first?.id ?? -1, refusal({ type: 'retry', reason: 'transfer-in-progress' }));
    t.tick(t.now + 25);
    expect(t.forwarded(3).map((m) => m.attempt)).toEqual([1, 2]);
    // A copy of the first reply, delayed (or duplicated) by the network, arrives now: it
    // says nothing of attempt 2, which may still be served.
    t.reply(3, first?.id ?? -1, refusal({ type: 'overloaded', reason: 'late' }), 1);
    expect(t.answers(7)).toEqual([]);
    expect(t.router.pendingCalls()).toBe(1);
    t.reply(3, first?.id ?? -1, { type: 'result', result: putResult }, 2);
    expect(t.answers(7)).toEqual([{ type: 'result', result: putResult }]);
  });

  it('refuses at once, naming the leader, while its host reports the link to the leader down', () => {
    const t = scripted();
    t.lead(3, 1);
    t.router.linkChanged(t.now, 3, false);
    t.ask(7, call(1, put, { session: 1, seq: 1 }));
    expect(t.forwarded(3)).toEqual([]);
    expect(t.answers(7)).toEqual([refusal({ type: 'notLeader', leader: 3 })]);
    t.router.linkChanged(t.now, 3, true);
    t.ask(8, call(2, put, { session: 1, seq: 2 }));
    expect(t.forwarded(3)).toHaveLength(1);
  });

  it('keeps a call while no leader is known, forwards it once one is, and refuses it at its deadline if none comes', () => {
    const t = scripted({ retryPauseMs: 25 });
    t.ask(7, call(1, put, { session: 1, seq: 1, timeoutMs: 500 }));
    expect(t.answers(7)).toEqual([]);
    t.tick(100);
    t.lead(2, 1);
    t.tick(125);
    expect(t.forwarded(2)).toHaveLength(1);

    const u = scripted({ retryPauseMs: 25 });
    u.ask(7, call(1, get, { timeoutMs: 100 }));
    for (let at = 25; at <= 100; at += 25) u.tick(at);
    expect(u.answers(7)).toEqual([refusal({ type: 'notLeader', leader: NO_NODE })]);
  });

  it('refuses calls past callsMax as overloaded', () => {
    const t = scripted({ callsMax: 2 });
    t.lead(3, 1);
    for (let i = 1; i <= 3; i++) t.ask(i, call(i, get));
    expect(t.answers(3)).toEqual([refusal({ type: 'overloaded', reason: expect.any(String) })]);
    expect(t.forwarded(3)).toHaveLength(2);
  });
});

describe('the leader serves a forwarded call here, never further', () => {
  it('answers a malformed call and a client write to a reserved key as invalid, proposing nothing', () => {
    const t = scripted();
    const good: FwdCall = {
      type: 'fwdCall',
      id: 5,
      kind: 'write',
      session: 0,
      seq: 0,
      op: put,
      attempt: 1,
      timeoutMs: 1000,
    };
    t.from(2, { ...good, op: { f: 'put', key: 3 } } as unknown as Msg);
    t.from(2, { ...good, id: 6, kind: 'read' } as Msg);
    t.from(2, { ...good, id: 7, op: { f: 'put', key: `${MEMBER_PREFIX}9`, value: '{}' } });
    const replies = t.said.sent.filter((m) => m.to === 2).map((m) => m.msg as FwdReply);
    expect(
      replies.map((r) => [r.id, r.outcome.type === 'refused' && r.outcome.refusal.type]),
    ).toEqual([
      [5, 'invalid'],
      [6, 'invalid'],
      [7, 'invalid'],
    ]);
    expect(t.router.pendingCalls()).toBe(0);
  });

  it('answers notLeader with its hint rather than forwarding a second hop', () => {
    const t = scripted();
    t.lead(3, 1);
    t.from(2, {
      type: 'fwdCall',
      id: 5,
      kind: 'write',
      session: 1,
      seq: 1,
      op: put,
      attempt: 1,
      timeoutMs: 1000,
    });
    expect(t.forwarded(3)).toEqual([]);
    const reply = t.said.sent.find((m) => m.to === 2)?.msg as FwdReply;
    expect(reply).toEqual({
      type: 'fwdReply',
      id: 5,
      attempt: 1,
      outcome: refusal({ type: 'notLeader', leader: 3 }),
    });
  });
});

describe('a node that knows no leader waits leaderlessPatienceMs for one, then refuses at once', () => {
  /** Ticks every 25 ms from `from` (exclusive) to `to` (inclusive). */
  function ticks(t: ReturnType<typeof scripted>, from: number, to: number) {
    for (let at = from + 25; at <= to; at += 25) t.tick(at);
  }
  const noLeader = refusal({ type: 'notLeader', leader: NO_NODE });

  it('holds and retries a call until the patience has passed since it last knew a leader', () => {
    const t = scripted({ retryPauseMs: 25, leaderlessPatienceMs: 500 });
    t.ask(7, call(1, put, { session: 1, seq: 1, timeoutMs: 5000 }));
    ticks(t, 0, 475);
    expect(t.answers(7)).toEqual([]);
    expect(t.router.pendingCalls()).toBe(1);
    expect(t.router.deadline()).toBeLessThanOrEqual(500); // the next retry, not the deadline
    t.tick(500);
    // Long before its 5000 ms deadline, and nothing was proposed: no hint, nothing applied.
    expect(t.answers(7)).toEqual([noLeader]);
    expect(t.router.pendingCalls()).toBe(0);
    // Past the patience a new call is refused in the input that brings it.
    t.ask(8, call(2, get, { timeoutMs: 5000 }));
    expect(t.answers(8)).toEqual([noLeader]);
    expect(t.router.pendingCalls()).toBe(0);
  });

  it('waits the whole patience again once it has known a leader', () => {
    const t = scripted({ retryPauseMs: 25, leaderlessPatienceMs: 500 });
    ticks(t, 0, 600);
    t.ask(7, call(1, get, { timeoutMs: 5000 }));
    expect(t.answers(7)).toEqual([noLeader]);
    t.lead(3, 10); // at 600
    t.ask(8, call(2, get, { timeoutMs: 5000 }));
    expect(t.forwarded(3)).toHaveLength(1);
    t.reply(3, t.forwarded(3)[0]?.id ?? -1, { type: 'result', result: putResult });
    // No heartbeat follows: the election timeout ends what it knows of leader 3.
    let lostAt = t.now;
    while (t.router.leader() !== NO_NODE) {
      expect(lostAt).toBeLessThan(2000);
      lostAt += 25;
      t.tick(lostAt);
    }
    t.ask(9, call(3, put, { session: 1, seq: 1, timeoutMs: 5000 }));
    ticks(t, lostAt, lostAt + 475);
    expect(t.answers(9)).toEqual([]);
    t.tick(lostAt + 500);
    expect(t.answers(9)).toEqual([noLeader]);
  });
});

describe('a membership change on a protocol without membership rules', () => {
  it('is answered as a membership call, refused unsupported, and never forwarded', () => {
    const replica = MultiPaxosKvReplica.restore(
      { ...MULTI_PAXOS_DEFAULTS, id: 1, members: [1, 2, 3] },
      Rng.fromSeed(1),
      initialMultiDurable(),
      defaultMultiKvReplicaOptions,
    );
    const router = new Router(
      replica,
      multiPaxosKvBinding<MultiPaxosKvReplica>((r) => r),
    );
    const change = { type: 'remove', node: 3 } as const;
    router.request(0, 7, { type: 'member', id: 4, change, timeoutMs: 1000, forward: true });
    const replies: unknown[] = [];
    const sent: unknown[] = [];
    for (let rd = router.ready(); rd !== undefined; rd = router.ready()) {
      replies.push(...rd.earlyReplies, ...rd.replies);
      sent.push(...rd.early, ...rd.messages.filter((m) => m.msg.type === 'fwdCall'));
      router.advance();
    }
    expect(replies).toEqual([
      {
        client: 7,
        reply: {
          type: 'member',
          id: 4,
          outcome: {
            type: 'refused',
            refusal: {
              type: 'unsupported',
              reason: expect.stringContaining('not implemented for Multi-Paxos'),
            },
          },
        },
      },
    ]);
    expect(sent.filter((m) => (m as { msg: { type: string } }).msg.type === 'fwdCall')).toEqual([]);
  });
});
