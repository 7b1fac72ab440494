import type { CoreTypes } from '../../kernel/core.ts';
import type { Playground } from '../../sim/interactive.ts';
import type { PlaygroundProtocol } from '../../sim/interactive-protocol.ts';
import type { TourStop } from './tour.ts';

type Pg = Playground<CoreTypes, unknown>;

/**
 * Everything the playground page needs for one protocol: its adapter, its guided tour, and
 * at most one protocol-specific button. Protocols beyond the first two are loaded on demand
 * (one module per protocol, split by Vite), so the first page load carries only Raft's code.
 */
export interface ProtocolPage {
  readonly protocol: PlaygroundProtocol<CoreTypes, unknown>;
  readonly tour: readonly TourStop[];
  readonly action?: {
    readonly label: string;
    /** Run on a fresh playground (same seed and size), as a tour stop may. */
    readonly fresh?: boolean;
    readonly run: (pg: Pg) => void;
  };
}

/** Steps the playground until `done` holds or `stepsMax` events ran; returns whether it held. */
export function stepUntil(pg: Pg, done: (pg: Pg) => boolean, stepsMax = 20_000): boolean {
  for (let i = 0; i < stepsMax && !done(pg); i++) {
    if (!pg.step()) break;
  }
  return done(pg);
}
