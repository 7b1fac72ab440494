/**
 * The Paxos family as pure cores (kernel `Core` contract): single-decree Basic Paxos, Fast
 * Paxos with coordinated or uncoordinated collision recovery, and Multi-Paxos (a replicated
 * log with leader election, leases, batching, pipelining, catch-up and compaction). Each
 * exports its durable-state type, the `apply…Persist` fold that defines durability, and a
 * constructor that restores from that state. `invariants.ts` holds the safety checks the
 * simulator runs after every step.
 */

export type { ProposalId } from './ballot.ts';
export {
  compareProposalIds,
  formatProposalId,
  maxProposalId,
  nextProposalId,
  proposalIdEquals,
  ZERO_PROPOSAL_ID,
} from './ballot.ts';

export type { AcceptorView, BasicUnsafeTestingFaults } from './basic/acceptor.ts';
export { applyBasicPersist, initialBasicDurable } from './basic/durable.ts';
export type { BasicPaxosConfig } from './basic/node.ts';
export { BASIC_PAXOS_DEFAULTS, BasicPaxosNode } from './basic/node.ts';
export type { ProposerView } from './basic/proposer.ts';
export type {
  AcceptedProposal,
  BasicDelivery,
  BasicDurable,
  BasicEvent,
  BasicMsg,
  BasicPersist,
  BasicReply,
  BasicRequest,
  BasicTypes,
} from './basic/types.ts';

export type { FastAcceptorView, FastUnsafeTestingFaults } from './fast/acceptor.ts';
export type { FastClientOutcome } from './fast/client.ts';
export { FastPaxosClient } from './fast/client.ts';
export { applyFastPersist, initialFastDurable } from './fast/durable.ts';
export type { FastPaxosConfig } from './fast/node.ts';
export {
  defaultFastQuorums,
  FAST_PAXOS_DEFAULTS,
  FastPaxosNode,
  validateFastQuorums,
} from './fast/node.ts';
export type { FastQuorums, FastRound, ValuePick, Vote } from './fast/round.ts';
export { compareRounds, formatRound, isCollision, pickValue } from './fast/round.ts';
export type {
  FastDelivery,
  FastDurable,
  FastEvent,
  FastMsg,
  FastPersist,
  FastReply,
  FastRequest,
  FastTypes,
} from './fast/types.ts';

export type {
  AcceptedEntry,
  AcceptorSnapshot,
  BallotOrder,
  ChosenValue,
  SafetyMonitorOptions,
  SafetyViolation,
} from './invariants.ts';
export {
  checkAtMostOneChosen,
  checkChosenWasProposed,
  checkLearnersAgree,
  checkPromiseKept,
  chosenValues,
  proposalIdOrder,
  SafetyMonitor,
} from './invariants.ts';

export { applyMultiPersist, initialMultiDurable } from './multi/durable.ts';
export type { LeaderLimits } from './multi/leader.ts';
export { recoverInstances } from './multi/leader.ts';
export type { MultiPaxosConfig, MultiUnsafeTestingFaults } from './multi/node.ts';
export { MULTI_PAXOS_DEFAULTS, MultiPaxosNode } from './multi/node.ts';
export type {
  AcceptedInstance,
  Batch,
  ChosenInstance,
  LogCommand,
  MultiDelivery,
  MultiDurable,
  MultiEvent,
  MultiMsg,
  MultiPersist,
  MultiReply,
  MultiRequest,
  MultiTypes,
} from './multi/types.ts';

export type { ChaosOptions, TestClusterOptions } from './testing.ts';
export { NO_CHAOS, TestCluster } from './testing.ts';
