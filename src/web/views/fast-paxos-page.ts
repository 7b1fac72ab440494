import type { CoreTypes } from '../../kernel/core.ts';
import { fastPaxosQuorumSizes } from '../../kernel/quorum.ts';
import type { Playground } from '../../sim/interactive.ts';
import type { PlaygroundProtocol } from '../../sim/interactive-protocol.ts';
import { collisionLags, fastPaxosPlayground } from '../protocols/fast-paxos.ts';
import type { ProtocolPage } from './protocol-page.ts';
import type { TourStop } from './tour.ts';

type Pg = Playground<CoreTypes, unknown>;

const learnedAll = (pg: Pg) => pg.nodes().every((n) => !n.up || n.view.role === 'learned');
const sizes = (pg: Pg) => fastPaxosQuorumSizes(pg.members.length);
const sawCollision = (pg: Pg) => pg.captions().some((c) => c.text.includes('collision'));

/** Two clients propose at once, each near half of the nodes, so their votes split. */
export function twoClientsAtOnce(pg: Pg): void {
  const lags = collisionLags(pg.members);
  pg.clientBroadcast('red', lags.first);
  pg.clientBroadcast('blue', lags.second);
}

export const fastPaxosTour: readonly TourStop[] = [
  {
    caption: () =>
      'Fast Paxos (src/paxos/fast) decides one value, with one message delay fewer than classic Paxos when clients do not collide. n1 coordinates: it opens fast round 1.1f by running phase 1 with no value (Prepare, Promise), then sends "any". The badge is the round each acceptor joined; f marks a fast round.',
    ready: (pg) => pg.nodes().some((n) => n.view.role === 'coordinator'),
  },
  {
    caption: (pg) =>
      `A client sends "red" straight to every acceptor (purple dots), bypassing the coordinator. In the open fast round each acceptor votes for the first value it receives and sends Voted to every learner. ${sizes(pg).fast} of ${pg.members.length} equal votes (a fast quorum, larger than the classic ${sizes(pg).classic}) choose it.`,
    enter: (pg) => {
      pg.clientRequest('red');
    },
    ready: learnedAll,
  },
  {
    fresh: true,
    caption: (pg) =>
      `Collision. A fresh cluster, and two clients propose at once: "red" reaches n1–n${Math.ceil(pg.members.length / 2)} first, "blue" the others. Acceptors vote for whichever arrives first, so the votes split and neither value can reach ${sizes(pg).fast}. The coordinator sees the collision once every vote is in.`,
    enter: twoClientsAtOnce,
    ready: sawCollision,
  },
  {
    caption: (pg) =>
      `Recovery (coordinated, section 3.3): the fast-round votes double as phase-1 promises for the recovery round 1.1+r that follows 1.1f, so n1 skips phase 1. It picks the value with the most votes and sends Accept in that classic round; ${sizes(pg).classic} of ${pg.members.length} votes choose it.`,
    ready: learnedAll,
  },
  {
    caption: (pg) => {
      const value = pg.nodes().find((n) => n.view.role === 'learned')?.view.log[0]?.label ?? '?';
      return `Every learner learned "${value}", and both clients were told so: the loser learns another value won. Try it yourself with "Two clients propose at once" (a fresh decree each time), or crash two acceptors and send a client request: no fast quorum is left, and a node holding a client value falls back to a classic round.`;
    },
    ready: () => true,
  },
];

export const fastPaxosPage: ProtocolPage = {
  protocol: fastPaxosPlayground as unknown as PlaygroundProtocol<CoreTypes, unknown>,
  tour: fastPaxosTour,
  // On a fresh decree: the values then reach the acceptors around the time n1 opens its fast
  // round. Later, the coordinator may already have given the idle fast round up (its phase
  // timer runs from "any"), and the race would be settled by a classic round instead.
  action: { label: 'Two clients propose at once', fresh: true, run: twoClientsAtOnce },
};
