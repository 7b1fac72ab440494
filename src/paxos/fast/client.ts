import { assert } from '../../kernel/assert.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { FastReply, FastRequest } from './types.ts';

export type FastClientOutcome<V> =
  | { readonly type: 'pending' }
  | { readonly type: 'chosen'; readonly value: V; readonly mine: boolean };

/**
 * The client side of Fast Paxos, pure: a proposal goes straight to every acceptor (one
 * request per node, sent by the host), and the first `chosen` reply from any learner
 * settles it — possibly with another client's value, which `mine` reports.
 */
export class FastPaxosClient<V> {
  private proposal: { readonly value: V } | null = null;
  private outcome: FastClientOutcome<V> = { type: 'pending' };

  constructor(
    readonly client: ClientId,
    private readonly acceptors: readonly NodeId[],
    private readonly valueKey: (v: V) => string = (v) => JSON.stringify(v),
  ) {
    assert(acceptors.length >= 1, 'a Fast Paxos client needs acceptors to send to');
  }

  /** The requests to send, one per acceptor; call again to retransmit the same value. */
  propose(value: V): { readonly to: NodeId; readonly request: FastRequest<V> }[] {
    assert(
      this.proposal === null || this.valueKey(this.proposal.value) === this.valueKey(value),
      'a client proposes one value per decree',
    );
    this.proposal = { value };
    return this.acceptors.map((to) => ({ to, request: { type: 'propose', value } }));
  }

  onReply(reply: FastReply<V>): FastClientOutcome<V> {
    if (this.outcome.type === 'chosen' || reply.type === 'busy') return this.outcome;
    const mine =
      this.proposal !== null && this.valueKey(this.proposal.value) === this.valueKey(reply.value);
    this.outcome = { type: 'chosen', value: reply.value, mine };
    return this.outcome;
  }

  result(): FastClientOutcome<V> {
    return this.outcome;
  }
}
