import type { Core } from '../../kernel/core.ts';
import { formatProposalId, isZeroProposalId } from '../../paxos/ballot.ts';
import { applyBasicPersist, initialBasicDurable } from '../../paxos/basic/durable.ts';
import { BASIC_PAXOS_DEFAULTS, BasicPaxosNode } from '../../paxos/basic/node.ts';
import type {
  AcceptedProposal,
  BasicDurable,
  BasicMsg,
  BasicTypes,
} from '../../paxos/basic/types.ts';
import type {
  LogCell,
  MessageLook,
  NodeView,
  PlaygroundProtocol,
} from '../../sim/interactive-protocol.ts';

type V = string;
type Types = BasicTypes<V>;

/**
 * Single-decree Paxos (src/paxos/basic) in the playground. Every node is proposer, acceptor
 * and learner. A node is drawn by its proposer phase (preparing, accepting) or, once it
 * learned the chosen value, as `learned`; its badge is its promise (round.node) and its one
 * cell the proposal it accepted, replaced by the chosen value (filled) once learned.
 */
function cellOf(accepted: AcceptedProposal<V> | null): LogCell[] {
  if (accepted === null) return [];
  return [{ index: 1, term: accepted.id.round, label: accepted.value }];
}

function roleOf(node: BasicPaxosNode<V>): string {
  if (node.learned() !== null) return 'learned';
  const phase = node.proposerView().phase;
  return phase === 'preparing' || phase === 'accepting' ? phase : 'acceptor';
}

function liveView(node: BasicPaxosNode<V>): NodeView {
  const acc = node.acceptorView();
  const learned = node.learned();
  const phase = node.proposerView().phase;
  return {
    role: roleOf(node),
    term: acc.promised.round,
    leader: 0,
    commit: learned === null ? 0 : 1,
    applied: learned === null ? 0 : 1,
    // Once learned, the chosen value; before, what this acceptor accepted (which a minority
    // of acceptors may hold even after another value was chosen).
    log:
      learned === null
        ? cellOf(acc.accepted)
        : [{ index: 1, term: acc.accepted?.id.round ?? 0, label: learned.value }],
    electionTimer: phase === 'preparing' || phase === 'accepting' || phase === 'backoff',
    badge: isZeroProposalId(acc.promised) ? 'no promise' : `p ${formatProposalId(acc.promised)}`,
  };
}

function diskView(d: BasicDurable<V>): NodeView {
  return {
    role: 'down',
    term: d.promised.round,
    leader: 0,
    commit: d.learned === null ? 0 : 1,
    applied: 0,
    log: cellOf(d.accepted),
    electionTimer: false,
    badge: `p ${formatProposalId(d.promised)}`,
  };
}

function lookOf(msg: BasicMsg<V>): MessageLook {
  switch (msg.type) {
    case 'prepare':
      return { label: `Prepare ${formatProposalId(msg.id)}`, tone: 'vote' };
    case 'promise':
      return { label: `Promise ${formatProposalId(msg.id)}`, tone: 'voteReply' };
    case 'accept':
      return { label: `Accept ${formatProposalId(msg.id)}=${msg.value}`, tone: 'append' };
    case 'accepted':
      return { label: `Accepted ${formatProposalId(msg.id)}`, tone: 'appendReply' };
    case 'nack':
      return { label: `Nack (promised ${formatProposalId(msg.promised)})`, tone: 'other' };
    case 'decided':
      return { label: `Decided ${msg.value}`, tone: 'heartbeat' };
  }
}

export const basicPaxosPlayground: PlaygroundProtocol<Types, BasicDurable<V>> = {
  name: 'basic-paxos',
  title: 'Basic Paxos',

  createCore(init): Core<Types> {
    const config = {
      ...BASIC_PAXOS_DEFAULTS,
      id: init.id,
      members: init.members,
    };
    return new BasicPaxosNode<V>(config, init.rng, init.durable ?? initialBasicDurable<V>());
  },

  emptyDurable() {
    return initialBasicDurable<V>();
  },

  applyPersist(durable, item) {
    return applyBasicPersist(durable, item);
  },

  nodeView(core, durable) {
    return core instanceof BasicPaxosNode ? liveView(core as BasicPaxosNode<V>) : diskView(durable);
  },

  clientRequest(_id, value) {
    return { type: 'propose', value };
  },

  onReply(reply) {
    switch (reply.type) {
      case 'chosen':
        return { kind: 'decided', note: `chosen value: ${reply.value}` };
      case 'busy':
        return { kind: 'failed', reason: 'busy' };
    }
  },

  describeMessage: lookOf,

  describeEvent(event) {
    switch (event.type) {
      case 'phase1':
        return `phase 1: sends Prepare ${formatProposalId(event.id)}`;
      case 'phase2':
        return `phase 2: a majority promised; sends Accept ${formatProposalId(event.id)}`;
      case 'nacked':
        return `was refused: an acceptor promised ${formatProposalId(event.promised)}; backs off`;
      case 'learned':
        return 'learned the chosen value';
      default:
        return undefined;
    }
  },
};
