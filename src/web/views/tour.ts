import type { CoreTypes } from '../../kernel/core.ts';
import type { Playground } from '../../sim/interactive.ts';

type Pg = Playground<CoreTypes, unknown>;

/**
 * One stop of the guided tour: a caption, something it does on arrival (send a request,
 * crash the leader), and the condition that lets the visitor move on. Conditions read the
 * real cores' state, so the captions never run ahead of the protocol.
 */
export interface TourStop {
  /** Start this stop on a fresh playground (same seed and size), before `enter`. */
  readonly fresh?: boolean;
  readonly caption: (pg: Pg) => string;
  readonly enter?: (pg: Pg) => void;
  readonly ready: (pg: Pg) => boolean;
}

const leader = (pg: Pg) => pg.nodes().find((n) => n.up && n.view.role === 'leader');
const anyRole = (pg: Pg, role: string) => pg.nodes().some((n) => n.up && n.view.role === role);
const lastRequest = (pg: Pg) => pg.requests().at(-1);

/** Term of the leader that was crashed in the tour, to wait for a newer one. */
let crashedTerm = 0;

export const raftTour: readonly TourStop[] = [
  {
    caption: () =>
      'Raft, with the real core from src/raft. Every server starts as a follower (blue). The white ring is its election timer: a random 150–300 ms, drawn anew each time it is reset, so servers rarely time out together.',
    ready: (pg) => pg.now > 60,
  },
  {
    caption: () =>
      'When a follower hears nothing from a leader before its ring runs out, it becomes a candidate (orange): it increments the term (T), votes for itself and sends RequestVote to every other server.',
    ready: (pg) => anyRole(pg, 'candidate') || leader(pg) !== undefined,
  },
  {
    caption: (pg) => {
      const n = pg.members.length;
      return `A server grants at most one vote per term, to a candidate whose log is at least as up to date as its own. A candidate with votes from a majority (${Math.floor(n / 2) + 1} of ${n}) becomes leader.`;
    },
    ready: (pg) => leader(pg) !== undefined,
  },
  {
    caption: (pg) =>
      `n${leader(pg)?.id ?? '?'} is leader (gold) for term ${leader(pg)?.view.term ?? '?'}. Its heartbeats (grey dots) reset the followers' rings, so no new election starts while it is alive. It also appended a no-op entry to commit entries of earlier terms.`,
    ready: (pg) => pg.now > 0,
  },
  {
    caption: () =>
      'Log replication: a client sends a command to the leader (purple dot). The leader appends it to its log, not yet committed (hollow cell), and answers with the index it got.',
    enter: (pg) => {
      pg.clientRequest('x=1');
    },
    ready: (pg) => (lastRequest(pg)?.phase ?? 'sending') !== 'sending',
  },
  {
    caption: () =>
      'The leader replicates the entry with AppendEntries (green dots). Once a majority has stored it, the leader commits it (the cell fills in) and applies it to its state machine; the followers learn the new commit index from the next message and apply it too.',
    ready: (pg) => {
      pg.refreshRequests();
      return lastRequest(pg)?.phase === 'committed';
    },
  },
  {
    caption: () =>
      'Committed on every node. Now the leader crashes. Its followers stop hearing heartbeats; the first ring to run out starts an election in a higher term.',
    enter: (pg) => {
      const l = leader(pg);
      if (l === undefined) return;
      crashedTerm = l.view.term;
      pg.crash(l.id);
    },
    ready: (pg) => (leader(pg)?.view.term ?? 0) > crashedTerm,
  },
  {
    caption: (pg) =>
      `n${leader(pg)?.id ?? '?'} leads term ${leader(pg)?.view.term ?? '?'}. The committed entry survived: a candidate can only win with a log as up to date as a majority's, and every majority holds it. Restart the old leader: it sees the higher term, steps down and catches up.`,
    enter: () => undefined,
    ready: () => true,
  },
];

const learnedAll = (pg: Pg) => pg.nodes().every((n) => !n.up || n.view.role === 'learned');

export const basicPaxosTour: readonly TourStop[] = [
  {
    caption: () =>
      'Basic Paxos (src/paxos/basic) decides one value. Every node is a proposer, an acceptor and a learner. Under each node is its promise: the highest proposal id it answered, written round.node so ids are unique and ordered. Nobody has promised anything yet.',
    ready: () => true,
  },
  {
    caption: () =>
      'A client asks n1 to propose "red". Phase 1: n1 picks a proposal id above any it has seen and sends Prepare(id) to every acceptor (orange dots).',
    enter: (pg) => {
      pg.clientRequest('red', 1);
    },
    ready: (pg) =>
      pg.nodes().some((n) => n.view.badge !== undefined && n.view.badge !== 'no promise'),
  },
  {
    caption: () =>
      'Each acceptor answers with a Promise: it will accept nothing below this id, and it reports the proposal it has already accepted, if any. With promises from a majority, the proposer must propose the value of the highest-id proposal reported, or its own value if none was.',
    ready: (pg) => pg.nodes().some((n) => n.view.role === 'accepting' || n.view.role === 'learned'),
  },
  {
    caption: () =>
      'Phase 2: Accept(id, value) (green dots). An acceptor accepts unless it has promised a higher id, and announces it with Accepted to every learner. Once a majority accepted the same proposal, the value is chosen; learners that count a majority fill the cell.',
    ready: learnedAll,
  },
  {
    caption: (pg) =>
      `Another client proposes "blue" at n${pg.members.length}. The value is already chosen, so the answer is "red": once chosen, a value never changes. A proposer that had not learned it would run phase 1 and find "red" among the promises, and have to propose it.`,
    enter: (pg) => {
      pg.clientRequest('blue', pg.members.length);
    },
    ready: (pg) => lastRequest(pg)?.phase === 'committed',
  },
  {
    caption: () =>
      'Two proposers can pre-empt each other forever, each Prepare outbidding the other (Nack, then a higher id); a random backoff lets one finish. Try it: Reset, then send client requests to different nodes, crash acceptors, or raise the loss rate.',
    ready: () => true,
  },
];
