import type { Core } from '../../kernel/core.ts';
import { NO_NODE } from '../../kernel/ids.ts';
import { majority } from '../../kernel/quorum.ts';
import { formatProposalId, isZeroProposalId, type ProposalId } from '../../paxos/ballot.ts';
import { applyMultiPersist, initialMultiDurable } from '../../paxos/multi/durable.ts';
import { MULTI_PAXOS_DEFAULTS, MultiPaxosNode } from '../../paxos/multi/node.ts';
import type { Batch, MultiDurable, MultiMsg, MultiTypes } from '../../paxos/multi/types.ts';
import type {
  LogCell,
  MessageLook,
  NodeView,
  PlaygroundProtocol,
} from '../../sim/interactive-protocol.ts';

type C = string;
/** The playground never compacts, so no snapshot is ever taken or shipped. */
type S = null;
type Types = MultiTypes<C, S>;
type Node = MultiPaxosNode<C, S>;

/** Instances drawn per node: the newest ones. */
const LOG_CELLS_MAX = 14;

/** The label of an instance's value: its commands, or `·` for the no-op (empty batch). */
function labelOf(value: Batch<C>): string {
  return value.length === 0 ? '·' : value.map((c) => c.command).join(',');
}

/**
 * One cell per instance the node knows: chosen (filled once below the commit frontier) or
 * only accepted (hollow), tagged with the round of the ballot it was accepted in (0 when
 * the node learned it without accepting it, from a commit index or catch-up).
 */
function cellsOf(
  accepted: Iterable<{
    readonly instance: number;
    readonly ballot: ProposalId;
    readonly value: Batch<C>;
  }>,
  chosen: Iterable<{ readonly instance: number; readonly value: Batch<C> }>,
): LogCell[] {
  const byInstance = new Map<number, { round: number; value: Batch<C> }>();
  for (const a of accepted) byInstance.set(a.instance, { round: a.ballot.round, value: a.value });
  for (const c of chosen) {
    const round = byInstance.get(c.instance)?.round ?? 0;
    byInstance.set(c.instance, { round, value: c.value });
  }
  return [...byInstance]
    .sort(([a], [b]) => a - b)
    .slice(-LOG_CELLS_MAX)
    .map(([index, { round, value }]) => ({
      index,
      term: round,
      label: labelOf(value),
      values: value.map((c) => c.command),
    }));
}

/**
 * A node's role as far as the core shows it: `leader`; `follower` of a known leader; or
 * `seeking` when it knows no leader (its election timer is running, or it is campaigning).
 */
function roleOf(node: Node): string {
  if (node.isLeader()) return 'leader';
  return node.leaderHint() === NO_NODE ? 'seeking' : 'follower';
}

function liveView(node: Node): NodeView {
  const { promised, accepted } = node.acceptorView();
  const role = roleOf(node);
  const frontier = node.commitIndex();
  return {
    role,
    term: promised.round,
    leader: node.leaderHint() ?? 0,
    commit: frontier - 1,
    applied: frontier - 1,
    log: cellsOf(accepted, node.learnedView()),
    electionTimer: role !== 'leader',
    badge: isZeroProposalId(promised) ? 'no ballot' : `b ${formatProposalId(promised)}`,
  };
}

function diskView(d: MultiDurable<C, S>): NodeView {
  let frontier = 1;
  while (d.chosen.has(frontier)) frontier++;
  const accepted = [...d.accepted].map(([instance, a]) => ({ instance, ...a }));
  const chosen = [...d.chosen].map(([instance, value]) => ({ instance, value }));
  return {
    role: 'down',
    term: d.promised.round,
    leader: 0,
    commit: frontier - 1,
    applied: 0,
    log: cellsOf(accepted, chosen),
    electionTimer: false,
    badge: `b ${formatProposalId(d.promised)}`,
  };
}

function lookOf(msg: MultiMsg<C, S>): MessageLook {
  switch (msg.type) {
    case 'prepare':
      return {
        label: `Prepare ${formatProposalId(msg.ballot)} #${msg.fromInstance}+`,
        tone: 'vote',
      };
    case 'promise':
      return { label: `Promise (${msg.accepted.length} accepted)`, tone: 'voteReply' };
    case 'nack':
      return { label: `Nack (promised ${formatProposalId(msg.promised)})`, tone: 'other' };
    case 'accept':
      return { label: `Accept #${msg.instance}=${labelOf(msg.value)}`, tone: 'append' };
    case 'accepted':
      return { label: `Accepted #${msg.instance}`, tone: 'appendReply' };
    case 'heartbeat':
      return { label: `heartbeat (commit <${msg.commitIndex})`, tone: 'heartbeat' };
    case 'heartbeatAck':
      return { label: 'lease ack', tone: 'heartbeat' };
    case 'catchUp':
      return { label: `catch up from #${msg.fromInstance}`, tone: 'other' };
    case 'chosenEntries':
      return { label: `${msg.entries.length} chosen`, tone: 'other' };
    case 'snapshot':
      return { label: 'snapshot', tone: 'other' };
  }
}

/**
 * Multi-Paxos (src/paxos/multi) in the playground: the real `MultiPaxosNode` with string
 * commands, no compaction. Badge: the ballot the node promised. Cells: instances, `#·b`
 * with the ballot round they were accepted in, filled once chosen; `·` is a no-op.
 */
export const multiPaxosPlayground: PlaygroundProtocol<Types, MultiDurable<C, S>> = {
  name: 'multi-paxos',
  title: 'Multi-Paxos',

  createCore(init): Core<Types> {
    const config = { ...MULTI_PAXOS_DEFAULTS, id: init.id, members: init.members };
    return new MultiPaxosNode<C, S>(config, init.rng, init.durable ?? initialMultiDurable<C, S>());
  },

  emptyDurable() {
    return initialMultiDurable<C, S>();
  },

  applyPersist(durable, item) {
    return applyMultiPersist(durable, item);
  },

  nodeView(core, durable) {
    return core instanceof MultiPaxosNode ? liveView(core as Node) : diskView(durable);
  },

  clientRequest(requestId, value) {
    return { type: 'command', id: requestId, command: value };
  },

  requestIdOf(reply) {
    return reply.id;
  },

  onReply(reply) {
    switch (reply.type) {
      case 'proposed':
        return { kind: 'accepted', index: 0, term: 0 };
      case 'notLeader':
        return { kind: 'redirect', to: reply.leaderHint ?? undefined };
      case 'unavailable':
        return { kind: 'failed', reason: reply.reason };
      case 'readOk':
        return { kind: 'failed', reason: 'unexpected readOk' };
    }
  },

  legend(members) {
    return `Multi-Paxos: a leader runs phase 1 once for every instance from its first unchosen one, then phase 2 alone per instance; a majority (${majority(members.length)} of ${members.length}) chooses. Badge: the promised ballot (round.node). Cells: instance·ballot round, filled once chosen, · a no-op.`;
  },

  describeMessage: lookOf,

  describeEvent(event) {
    switch (event.type) {
      case 'campaign':
        return `heard no leader: phase 1 with ballot ${formatProposalId(event.ballot)} for every instance from #${event.fromInstance}`;
      case 'leader':
        return event.recovered === 0
          ? `won a majority of promises: leader with ballot ${formatProposalId(event.ballot)}`
          : `won a majority of promises: leader with ballot ${formatProposalId(event.ballot)}; re-proposes ${event.recovered} half-done instance(s) (gaps as no-ops)`;
      case 'follower':
        return event.leader === NO_NODE ? undefined : `follows leader n${event.leader}`;
      case 'catchUpNeeded':
        return `must catch up from #${event.fromInstance} before leading`;
      case 'dropped':
        return undefined;
    }
  },
};
