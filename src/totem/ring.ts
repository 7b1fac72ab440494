import type { NodeId } from '../kernel/ids.ts';
import { RingStore } from './store.ts';
import type { Commit, RingId, Token } from './types.ts';

/**
 * What a node keeps about one ring it is on (the installed regular ring, or the one being
 * formed in Commit and Recovery): its datagrams and its view of the token.
 */
export interface Ring {
  readonly id: RingId;
  /** Ascending: the token goes to the next id, wrapping round. */
  readonly members: readonly NodeId[];
  readonly store: RingStore;
  /** Highest token seq accepted (commit token rotations count as −2 and −1). */
  lastTokenSeq: number;
  /** Aru on the token at our previous visit. */
  prevAruIn: number;
  /** The aru has stayed at least this for a full rotation: every member holds 1..safeUpTo. */
  safeUpTo: number;
  /** Seq on the token as we last forwarded it. */
  prevSeqOut: number;
  /** Datagrams we sent (new and resent) at our last visit, and our backlog then. */
  lastSent: number;
  lastBacklog: number;
  visits: number;
  /** Consecutive visits with nothing sent, nothing missing and aru = seq. */
  emptyVisits: number;
  /** Consecutive Recovery visits with nothing left to re-send anywhere and aru = seq. */
  quietVisits: number;
  /** We asked the representative to release the idle token since our last visit (once a visit). */
  releaseSent: boolean;
  /** A member asked us, the representative, to release the token: the next pass-on forwards. */
  releaseAsked: boolean;
  /** The token (or commit token) we last passed on, until the successor shows it took it. */
  forwarded: Forwarded | undefined;
}

export interface Forwarded {
  readonly msg: Token | Commit;
  readonly to: NodeId;
  readonly at: number;
  /** The token seq it carried, and the highest datagram seq assigned when it left. */
  readonly tokenSeq: number;
  readonly seq: number;
  /** Evidence that the successor took it: a later token, or a datagram above `seq`. */
  evidence: boolean;
  retransmitAt: number;
}

/** Commit token rotations, ordered before the ring's first token (token seq 0). */
export const COMMIT_ROTATION_1 = -2;
export const COMMIT_ROTATION_2 = -1;
export const NO_TOKEN_YET = -3;

export function newRing(id: RingId, members: readonly NodeId[]): Ring {
  return {
    id,
    members,
    store: new RingStore(id),
    lastTokenSeq: NO_TOKEN_YET,
    prevAruIn: 0,
    safeUpTo: 0,
    prevSeqOut: 0,
    lastSent: 0,
    lastBacklog: 0,
    visits: 0,
    emptyVisits: 0,
    quietVisits: 0,
    releaseSent: false,
    releaseAsked: false,
    forwarded: undefined,
  };
}
