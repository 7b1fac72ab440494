import type { Core } from '../../kernel/core.ts';
import { fastPaxosQuorumSizes } from '../../kernel/quorum.ts';
import { isZeroProposalId } from '../../paxos/ballot.ts';
import { FastPaxosClient } from '../../paxos/fast/client.ts';
import { applyFastPersist, initialFastDurable } from '../../paxos/fast/durable.ts';
import { FAST_PAXOS_DEFAULTS, FastPaxosNode } from '../../paxos/fast/node.ts';
import { type FastRound, formatRound, type Vote } from '../../paxos/fast/round.ts';
import type { FastDurable, FastMsg, FastTypes } from '../../paxos/fast/types.ts';
import type {
  LogCell,
  MessageLook,
  NodeView,
  PlaygroundProtocol,
} from '../../sim/interactive-protocol.ts';

type V = string;
type Types = FastTypes<V>;

/** The node that opens the first fast round when the cluster starts (as in src/sim/paxos). */
export const FAST_INITIAL_COORDINATOR = 1;

/**
 * Extra delay on the far copies of the two racing proposals: far beyond the network's
 * jitter (exponential, mean 5 ms), so each value reaches its own half of the nodes first.
 */
const COLLISION_LAG_MS = 40;

/**
 * How a node is drawn. A node that learned is `learned`; otherwise its coordinator phase:
 * `coordinator` while its fast round is open ("any" sent), `preparing` / `accepting` in
 * phase 1 / phase 2 of a classic or recovery round, `waiting` while its fallback timer runs
 * (it holds a client value and starts a classic round of its own if nothing is decided
 * first, or it backs off after a failed round), and `acceptor` when it coordinates nothing.
 */
function roleOf(node: FastPaxosNode<V>): string {
  if (node.learned() !== null) return 'learned';
  switch (node.coordinatorPhase()) {
    case 'fast':
      return 'coordinator';
    case 'preparing':
      return 'preparing';
    case 'accepting':
      return 'accepting';
    case 'waiting':
      return 'waiting';
    default:
      return 'acceptor';
  }
}

/** Round labels as in the core (`formatRound`): round.node, `+r` for recovery, f/c for fast/classic. */
function badgeOf(promised: FastRound): string {
  return isZeroProposalId(promised.id) ? 'no round' : `r ${formatRound(promised)}`;
}

function voteCell(vote: Vote<V> | null): LogCell[] {
  return vote === null ? [] : [{ index: 1, term: vote.round.id.round, label: vote.value }];
}

function liveView(node: FastPaxosNode<V>): NodeView {
  const { promised, vote } = node.acceptorView();
  const learned = node.learned();
  const role = roleOf(node);
  return {
    role,
    term: promised.id.round,
    leader: 0,
    commit: learned === null ? 0 : 1,
    applied: learned === null ? 0 : 1,
    // Before learning, the acceptor's own vote; after, the chosen value (the vote may differ:
    // an acceptor that lost a collision keeps its fast-round vote until a recovery round).
    log:
      learned === null
        ? voteCell(vote)
        : [{ index: 1, term: vote?.round.id.round ?? 0, label: learned.value }],
    electionTimer: role !== 'acceptor' && role !== 'learned',
    badge: badgeOf(promised),
  };
}

function diskView(d: FastDurable<V>): NodeView {
  return {
    role: 'down',
    term: d.promised.id.round,
    leader: 0,
    commit: d.learned === null ? 0 : 1,
    applied: 0,
    log: voteCell(d.vote),
    electionTimer: false,
    badge: badgeOf(d.promised),
  };
}

function lookOf(msg: FastMsg<V>): MessageLook {
  switch (msg.type) {
    case 'prepare':
      return { label: `Prepare ${formatRound(msg.round)}`, tone: 'vote' };
    case 'promise':
      return { label: `Promise ${formatRound(msg.round)}`, tone: 'voteReply' };
    case 'any':
      return { label: `Any ${formatRound(msg.round)}`, tone: 'append' };
    case 'accept':
      return { label: `Accept ${formatRound(msg.round)}=${msg.value}`, tone: 'append' };
    case 'voted':
      return { label: `Voted ${formatRound(msg.round)}=${msg.value}`, tone: 'appendReply' };
    case 'nack':
      return { label: `Nack (in ${formatRound(msg.promised)})`, tone: 'other' };
    case 'decided':
      return { label: `Decided ${msg.value}`, tone: 'heartbeat' };
  }
}

/**
 * Single-decree Fast Paxos (src/paxos/fast) in the playground, coordinated recovery. n1
 * opens a fast round at start-up (Prepare, Promise, then "any"); a client sends its value to
 * every acceptor through `FastPaxosClient`, and an acceptor in the open fast round votes for
 * the first value it gets. A value is chosen by a fast quorum of votes in a fast round, or
 * a classic quorum in a classic or recovery round. The badge is the round the acceptor
 * joined, its one cell its vote, filled once it learned the chosen value.
 */
export const fastPaxosPlayground: PlaygroundProtocol<Types, FastDurable<V>> = {
  name: 'fast-paxos',
  title: 'Fast Paxos',

  createCore(init): Core<Types> {
    const config = {
      ...FAST_PAXOS_DEFAULTS,
      id: init.id,
      members: init.members,
      initialCoordinator: FAST_INITIAL_COORDINATOR,
    };
    return new FastPaxosNode<V>(config, init.rng, init.durable ?? initialFastDurable<V>());
  },

  emptyDurable() {
    return initialFastDurable<V>();
  },

  applyPersist(durable, item) {
    return applyFastPersist(durable, item);
  },

  nodeView(core, durable) {
    return core instanceof FastPaxosNode ? liveView(core as FastPaxosNode<V>) : diskView(durable);
  },

  clientRequest(_id, value) {
    return { type: 'propose', value };
  },

  fanOut(requestId, value, members) {
    return new FastPaxosClient<V>(requestId, members).propose(value);
  },

  onReply(reply) {
    switch (reply.type) {
      case 'chosen':
        return { kind: 'decided', note: `chosen value: ${reply.value}`, value: reply.value };
      case 'busy':
        return { kind: 'failed', reason: 'busy' };
    }
  },

  legend(members) {
    const q = fastPaxosQuorumSizes(members.length);
    return `Fast Paxos: a fast round needs a fast quorum of ${q.fast} of ${members.length} matching votes; a classic or recovery round needs a classic quorum of ${q.classic}. Badge: the round joined (round.node, f fast, c classic, +r recovery). Cell: the acceptor's vote, filled once chosen.`;
  },

  describeMessage: lookOf,

  describeEvent(event) {
    switch (event.type) {
      case 'roundStarted':
        return `starts ${event.round.fast ? 'fast' : 'classic'} round ${formatRound(event.round)}: sends Prepare`;
      case 'anySent':
        return `has promises from a classic quorum: sends "any" for fast round ${formatRound(event.round)}; clients may now go straight to the acceptors`;
      case 'collision':
        return `sees a collision in ${formatRound(event.round)}: no value can reach a fast quorum; recovers with a classic round`;
      case 'backoff':
        return `backs off until ${event.resumeAt.toFixed(0)} ms, then tries a classic round`;
      case 'learned':
        return `learned the chosen value in round ${formatRound(event.round)}`;
      case 'dropped':
        return undefined;
    }
  },
};

/**
 * Two clients propose at once, each near one half of the nodes: `first` reaches the first
 * ⌈n/2⌉ nodes before `second` does, the rest get `second` first. The fast-round votes
 * split so neither value can gather a fast quorum: a collision.
 */
export function collisionLags(members: readonly number[]): {
  first: (node: number) => number;
  second: (node: number) => number;
} {
  const near = new Set(members.slice(0, Math.ceil(members.length / 2)));
  return {
    first: (node) => (near.has(node) ? 0 : COLLISION_LAG_MS),
    second: (node) => (near.has(node) ? COLLISION_LAG_MS : 0),
  };
}
