import type { NodeId } from './ids.ts';

/**
 * A protocol message on its way between two nodes. `msg` is the protocol's own
 * discriminated union; the envelope only adds addressing, so one network model and one
 * transport serve every protocol.
 */
export interface Envelope<M> {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly msg: M;
}

/** A message a core asks its host to send; the host knows its own id and fills `from`. */
export interface Outgoing<M> {
  readonly to: NodeId;
  readonly msg: M;
}
