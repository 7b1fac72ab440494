import { describe, expect, it } from 'vitest';
import type { NodeId } from '../../kernel/ids.ts';
import { NO_NODE } from '../../kernel/ids.ts';
import { Rng } from '../../kernel/rng.ts';
import type { ProposalId } from '../ballot.ts';
import { MULTI_PAXOS_DEFAULTS, MultiPaxosNode } from './node.ts';
import type { MultiMsg, MultiReply } from './types.ts';

type Node = MultiPaxosNode<string, string>;
const period = MULTI_PAXOS_DEFAULTS.electionTimeoutMinMs;

/** Drains the node's output: what it sent, the replies, and whether it stepped down. */
function drain(node: Node) {
  const sent: { to: NodeId; msg: MultiMsg<string, string> }[] = [];
  const replies: MultiReply[] = [];
  const events: string[] = [];
  for (let rd = node.ready(); rd !== undefined; rd = node.ready()) {
    sent.push(...rd.early, ...rd.messages);
    replies.push(...rd.earlyReplies.map((r) => r.reply), ...rd.replies.map((r) => r.reply));
    events.push(...rd.events.map((e) => e.type));
    node.advance();
  }
  return { sent, replies, events };
}

/** Node 1 of [1, 2, 3], elected with node 2's promise at `now`; returns it and its ballot. */
function electedLeader(): { node: Node; ballot: ProposalId; now: number } {
  const node: Node = new MultiPaxosNode(
    { ...MULTI_PAXOS_DEFAULTS, id: 1, members: [1, 2, 3] },
    Rng.fromSeed(7),
  );
  node.tick(0);
  const now = node.deadline();
  node.tick(now);
  const prepare = drain(node).sent.find((m) => m.msg.type === 'prepare');
  if (prepare?.msg.type !== 'prepare') throw new Error('a campaign sends prepare');
  const ballot = prepare.msg.ballot;
  node.receive(now, 2, { type: 'promise', ballot, accepted: [], snapshotUpTo: 0 });
  expect(node.isLeader()).toBe(true);
  drain(node);
  return { node, ballot, now };
}

/** Runs the leader's timers to `until`, with node 2 answering every heartbeat if `acked`. */
function runTimers(node: Node, ballot: ProposalId, from: number, until: number, acked: boolean) {
  let now = from;
  while (node.isLeader() && node.deadline() <= until) {
    now = Math.max(now, node.deadline());
    node.tick(now);
    for (const { to, msg } of drain(node).sent) {
      if (acked && to === 2 && msg.type === 'heartbeat') {
        node.receive(now, 2, { type: 'heartbeatAck', ballot, seq: msg.seq });
      }
    }
  }
  return now;
}

describe('Multi-Paxos check-quorum (as Raft, dissertation 6.2)', () => {
  it('a leader that hears from no quorum for an election timeout steps down', () => {
    const { node, ballot, now } = electedLeader();
    runTimers(node, ballot, now, now + period - 1, false);
    expect(node.isLeader()).toBe(true);
    const steppedAt = runTimers(node, ballot, now, now + period, false);
    expect(node.isLeader()).toBe(false);
    expect(steppedAt).toBe(now + period);
    expect(node.leaderHint()).toBe(NO_NODE);
  });

  it('once stepped down it refuses a call at once instead of proposing it', () => {
    const { node, ballot, now } = electedLeader();
    const later = runTimers(node, ballot, now, now + period, false);
    drain(node);
    node.request(later, 9, { type: 'command', id: 5, command: 'x' });
    const out = drain(node);
    expect(out.replies).toEqual([{ type: 'notLeader', id: 5, leaderHint: NO_NODE }]);
    expect(out.sent.filter((m) => m.msg.type === 'accept')).toEqual([]);
  });

  it('tells the clients whose commands still wait in its queue to go elsewhere', () => {
    const { node, now } = electedLeader();
    // Fill the pipeline so that later commands wait in the queue, unproposed.
    for (let i = 0; i < MULTI_PAXOS_DEFAULTS.pipelineMax + 2; i++) {
      node.request(now, 9, { type: 'command', id: i, command: `c${i}` });
    }
    drain(node);
    node.tick(now + period);
    const out = drain(node);
    expect(out.events).toContain('follower');
    expect(out.replies.filter((r) => r.type === 'notLeader').map((r) => r.id)).toEqual([
      MULTI_PAXOS_DEFAULTS.pipelineMax,
      MULTI_PAXOS_DEFAULTS.pipelineMax + 1,
    ]);
    expect(node.isLeader()).toBe(false);
  });

  it('a leader that a quorum keeps answering stays leader', () => {
    const { node, ballot, now } = electedLeader();
    runTimers(node, ballot, now, now + 10 * period, true);
    expect(node.isLeader()).toBe(true);
  });
});
