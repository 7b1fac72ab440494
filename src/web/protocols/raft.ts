import type { Core } from '../../kernel/core.ts';
import { NO_NODE } from '../../kernel/ids.ts';
import { defaultRaftOptions, type RaftOptions } from '../../raft/config.ts';
import { RaftCore } from '../../raft/core.ts';
import {
  applyPersist,
  cloneDurableState,
  initialDurableState,
  type RaftDurableState,
} from '../../raft/durable.ts';
import type { Entry, RaftMsg, RaftTypes } from '../../raft/types.ts';
import type {
  LogCell,
  MessageLook,
  NodeView,
  PlaygroundProtocol,
} from '../../sim/interactive-protocol.ts';

type Cmd = string;
type Types = RaftTypes<Cmd>;

/** Log entries drawn per node: the newest ones. */
const LOG_CELLS_MAX = 14;

/**
 * The paper's timing (section 9: 150–300 ms election timeouts, heartbeats well below) and
 * no pre-vote, so the playground shows classic Raft: a cut-off node raises its term.
 */
export const playgroundRaftOptions: RaftOptions<Cmd> = {
  ...defaultRaftOptions<Cmd>((c) => c.length + 1),
  preVote: false,
};

function cellOf(e: Entry<Cmd>): LogCell {
  switch (e.kind) {
    case 'normal':
      return { index: e.index, term: e.term, label: e.data };
    case 'noop':
      return { index: e.index, term: e.term, label: '·' };
    case 'config':
      return { index: e.index, term: e.term, label: 'cfg' };
  }
}

function liveView(core: RaftCore<Cmd>): NodeView {
  const s = core.status();
  const log = core.log();
  const cells: LogCell[] = [];
  const from = Math.max(log.firstIndex, log.lastIndex - LOG_CELLS_MAX + 1);
  for (let i = from; i <= log.lastIndex; i++) {
    const e = log.entry(i);
    if (e !== undefined) cells.push(cellOf(e));
  }
  return {
    role: s.role,
    term: s.term,
    leader: s.leader,
    commit: s.commit,
    applied: s.applied,
    log: cells,
    electionTimer: s.role !== 'leader',
  };
}

function diskView(d: RaftDurableState<Cmd>): NodeView {
  return {
    role: 'down',
    term: d.hardState.term,
    leader: NO_NODE,
    commit: d.hardState.commit,
    applied: 0,
    log: d.entries.slice(-LOG_CELLS_MAX).map(cellOf),
    electionTimer: false,
  };
}

function lookOf(msg: RaftMsg<Cmd>): MessageLook {
  switch (msg.type) {
    case 'requestVote':
      return { label: msg.preVote ? 'PreVote' : `RequestVote t${msg.term}`, tone: 'vote' };
    case 'requestVoteReply':
      return { label: msg.granted ? 'vote ✓' : 'vote ✗', tone: 'voteReply' };
    case 'append':
      return { label: `Append ${msg.entries.length}`, tone: 'append' };
    case 'appendReply':
      return { label: msg.success ? 'ok' : 'reject', tone: 'appendReply' };
    case 'heartbeat':
      return { label: 'heartbeat', tone: 'heartbeat' };
    case 'heartbeatReply':
      return { label: 'hb ok', tone: 'heartbeat' };
    case 'commitHint':
      return { label: `commit? ${msg.index}`, tone: 'heartbeat' };
    case 'snapshotChunk':
    case 'snapshotChunkReply':
    case 'timeoutNow':
      return { label: msg.type, tone: 'other' };
  }
}

/** Raft (src/raft) in the playground: the real `RaftCore` with string commands. */
export const raftPlayground: PlaygroundProtocol<Types, RaftDurableState<Cmd>> = {
  name: 'raft',
  title: 'Raft',

  createCore(init): Core<Types> {
    const config = { voters: init.members, learners: [] };
    if (init.durable === undefined) {
      return RaftCore.create<Cmd>(init.id, config, playgroundRaftOptions, init.rng);
    }
    const disk = cloneDurableState(init.durable);
    return RaftCore.restore<Cmd>(init.id, disk, playgroundRaftOptions, init.rng);
  },

  emptyDurable(members) {
    return initialDurableState<Cmd>({ voters: members, learners: [] });
  },

  applyPersist(durable, item) {
    applyPersist(durable, item);
    return durable;
  },

  nodeView(core, durable) {
    return core instanceof RaftCore ? liveView(core as RaftCore<Cmd>) : diskView(durable);
  },

  clientRequest(id, value) {
    return { type: 'propose', id, data: value };
  },

  onReply(reply) {
    switch (reply.type) {
      case 'accepted':
        return { kind: 'accepted', index: reply.index, term: reply.term };
      case 'notLeader':
        return {
          kind: 'redirect',
          to: reply.leaderHint === NO_NODE ? undefined : reply.leaderHint,
        };
      case 'rejected':
        return { kind: 'failed', reason: reply.reason };
      case 'readReady':
      case 'done':
        return { kind: 'failed', reason: `unexpected ${reply.type}` };
    }
  },

  describeMessage: lookOf,

  describeEvent(event) {
    switch (event.type) {
      case 'electionStarted':
        return event.preVote
          ? `starts a pre-vote for term ${event.term}`
          : `timed out: candidate for term ${event.term}, asks for votes`;
      case 'elected':
        return `won a majority: leader of term ${event.term}`;
      case 'roleChanged':
        return event.role === 'follower' && event.leader !== NO_NODE
          ? `follows n${event.leader} in term ${event.term}`
          : undefined;
      case 'committed':
        return `commits up to index ${event.index}`;
      default:
        return undefined;
    }
  },
};
