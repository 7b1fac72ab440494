import type { CoreTypes } from '../../kernel/core.ts';
import type { NodeId } from '../../kernel/ids.ts';
import type { Playground } from '../../sim/interactive.ts';
import type { PlaygroundProtocol } from '../../sim/interactive-protocol.ts';
import { multiPaxosPlayground } from '../protocols/multi-paxos.ts';
import { type ProtocolPage, stepUntil } from './protocol-page.ts';
import type { TourStop } from './tour.ts';

type Pg = Playground<CoreTypes, unknown>;

const leader = (pg: Pg) => pg.nodes().find((n) => n.up && n.view.role === 'leader');
const lastRequest = (pg: Pg) => pg.requests().at(-1);
/** Live nodes whose log holds `value` in a chosen instance. */
const choseEverywhere = (pg: Pg, value: string) =>
  pg
    .nodes()
    .filter((n) => n.up)
    .every((n) =>
      n.view.log.some((c) => c.values?.includes(value) === true && c.index <= n.view.commit),
    );

/** The leader the tour crashed, and its ballot round, to wait for a newer leader. */
let crashed: { id: NodeId; round: number } = { id: 0, round: 0 };

/**
 * Sends `value` and crashes the leader once a majority holds it (itself and two followers)
 * but before the followers' Accepted reach it: chosen, yet known to no live node.
 */
function crashLeaderHalfway(pg: Pg, value: string): void {
  const l = leader(pg);
  if (l === undefined) return;
  pg.clientRequest(value, l.id);
  const holders = (p: Pg) =>
    p
      .nodes()
      .filter((n) => n.id !== l.id && n.view.log.some((c) => c.values?.includes(value) === true))
      .length;
  stepUntil(pg, (p) => holders(p) >= 2);
  crashed = { id: l.id, round: l.view.term };
  pg.crash(l.id);
}

/**
 * Leaves a hole in the log: the leader gets `lost` while cut off from everyone (its Accepts
 * and every later resend are dropped), then `kept` in the next instance, whose Accepts go out
 * in the one instant the leader is reachable; it crashes right after. The surviving nodes
 * hold the later instance but nobody holds the earlier one.
 */
export function leaveGapThenCrash(pg: Pg, lost: string, kept: string): void {
  const l = leader(pg);
  if (l === undefined) return;
  const holds = (value: string) => (p: Pg) =>
    p.node(l.id).view.log.some((c) => c.values?.includes(value) === true);
  pg.partition([[l.id]]);
  pg.clientRequest(lost, l.id);
  stepUntil(pg, holds(lost));
  pg.clientRequest(kept, l.id);
  const request = pg.flights().find((f) => f.to === l.id && f.look.label === `set ${kept}`);
  if (request === undefined) return;
  stepUntil(pg, (p) => p.nextEventAt() >= request.arriveAt);
  pg.heal();
  stepUntil(pg, holds(kept));
  pg.partition([[l.id]]);
  crashed = { id: l.id, round: l.view.term };
  pg.crash(l.id);
  pg.heal();
}

/** The instance `value` is in at the live nodes, 0 if none has it. */
const instanceOf = (pg: Pg, value: string) =>
  pg
    .nodes()
    .flatMap((n) => n.view.log)
    .find((c) => c.values?.includes(value) === true)?.index ?? 0;

export const multiPaxosTour: readonly TourStop[] = [
  {
    caption: () =>
      'Multi-Paxos (src/paxos/multi) agrees on a log of instances, one Paxos decree each. No node leads yet. The ring around each node is its election timer (a random 300–600 ms); the badge is the ballot it promised.',
    ready: (pg) => pg.now > 60,
  },
  {
    caption: () =>
      'A node that hears no leader campaigns: one phase 1 for every instance from its first unchosen one, Prepare(ballot) (orange). Each promise carries what that acceptor accepted in those instances, so nothing half-done is lost.',
    ready: (pg) => leader(pg) !== undefined,
  },
  {
    caption: (pg) =>
      `n${leader(pg)?.id ?? '?'} won a majority of promises and leads (gold). It sends heartbeats every 50 ms; an ack also promises to refuse other candidates for 200 ms, which gives the leader a lease to answer reads locally. Phase 1 is done for good: each command now costs phase 2 alone.`,
    ready: () => true,
  },
  {
    caption: () =>
      'A client sends x=1 to the leader. It proposes it in instance #1: Accept (green), Accepted back. Chosen once a majority accepted; the followers learn it from the commit index on the next message, and the cells fill.',
    enter: (pg) => {
      pg.clientRequest('x=1');
    },
    ready: (pg) => {
      pg.refreshRequests();
      return lastRequest(pg)?.phase === 'committed';
    },
  },
  {
    caption: () =>
      'Now y=2, and the leader crashes halfway: it and two followers accepted y=2 (a majority, so it is chosen) but the Accepted answers never reached it, so no live node knows. The followers stop hearing heartbeats; once their lease promise runs out, one campaigns with a higher ballot.',
    enter: (pg) => crashLeaderHalfway(pg, 'y=2'),
    ready: (pg) => (leader(pg)?.view.term ?? 0) > crashed.round,
  },
  {
    caption: (pg) =>
      `n${leader(pg)?.id ?? '?'} leads with a higher ballot. Its phase 1 found y=2 accepted in the promises, so it had to re-propose it in the same instance: the half-done instance is finished on every live node.`,
    ready: (pg) => choseEverywhere(pg, 'y=2'),
  },
  {
    caption: () =>
      'A hole: the leader gets z=3 while cut off from everyone, so its Accepts are lost; then w=4, proposed in the next instance in the one instant the network lets it through, and the leader crashes at once. The live nodes accepted w=4, and nobody alive has z=3.',
    enter: (pg) => leaveGapThenCrash(pg, 'z=3', 'w=4'),
    ready: (pg) => (leader(pg)?.view.term ?? 0) > crashed.round,
  },
  {
    caption: (pg) =>
      `The new leader's promises report w=4 in #${instanceOf(pg, 'w=4')} and nothing before it, so it fills the hole with a no-op (·) and re-proposes w=4: the log stays gapless, and z=3 was never chosen (its client would retry). Restart the crashed nodes: they learn the chosen instances and follow.`,
    ready: (pg) => choseEverywhere(pg, 'w=4'),
  },
];

export const multiPaxosPage: ProtocolPage = {
  protocol: multiPaxosPlayground as unknown as PlaygroundProtocol<CoreTypes, unknown>,
  tour: multiPaxosTour,
};
