import type { Ready } from '../../kernel/core.ts';
import { ThresholdQuorum } from '../../kernel/quorum.ts';
import type { ProposalId } from '../../paxos/ballot.ts';
import type { BasicUnsafeTestingFaults } from '../../paxos/basic/acceptor.ts';
import { applyBasicPersist, initialBasicDurable } from '../../paxos/basic/durable.ts';
import { BASIC_PAXOS_DEFAULTS, BasicPaxosNode } from '../../paxos/basic/node.ts';
import type { BasicDurable, BasicTypes } from '../../paxos/basic/types.ts';
import { proposalIdOrder } from '../../paxos/invariants.ts';
import type { SimProtocol } from '../protocol.ts';
import {
  type BatchEvidence,
  type Commitment,
  type EvidenceReader,
  evidenceMonitor,
  ObservedCore,
  PaxosSafety,
} from './safety.ts';
import { DecreeWorkload } from './workload.ts';

/**
 * `quorate sim paxos`: single-decree Basic Paxos (every node proposer, acceptor and
 * learner) under the decree workload: clients race to get their values chosen, the Paxos
 * safety checks run after every step, and after healing every node must have learned.
 */
export type BasicSimTypes = BasicTypes<string>;
export type BasicSimDurable = BasicDurable<string>;

type Node = BasicPaxosNode<string>;

const basicEvidence: EvidenceReader<BasicSimTypes, Node, ProposalId, string> = {
  read(batch: Ready<BasicSimTypes>, core: Node): BatchEvidence<ProposalId, string> {
    const commitments: Commitment<ProposalId, string>[] = [];
    for (const p of batch.persist) {
      if (p.type === 'promise') commitments.push({ kind: 'promise', ballot: p.id });
      else if (p.type === 'accept') {
        commitments.push({ kind: 'accept', instance: 0, ballot: p.id, value: p.value });
      }
    }
    const { promised, accepted } = core.acceptorView();
    const view = {
      promised,
      accepted:
        accepted === null ? [] : [{ instance: 0, ballot: accepted.id, value: accepted.value }],
    };
    return { commitments, view, learned: batch.deliver.map((d) => [0, d.value] as const) };
  },
  proposals: (req) => [req.value],
};

export interface BasicSimSettings {
  readonly name: string;
  readonly description: string;
  /** Deliberately broken acceptor or proposer behaviour, for tests that prove the checks. */
  readonly faults?: BasicUnsafeTestingFaults;
}

/** Builds the plugin; tests build the deliberately broken variants the same way. */
export function basicPaxosSimProtocol(
  settings: BasicSimSettings,
): SimProtocol<BasicSimTypes, BasicSimDurable> {
  return {
    name: settings.name,
    description: settings.description,
    defaultNodes: 5,

    createCore(init) {
      const node = new BasicPaxosNode<string>(
        {
          ...BASIC_PAXOS_DEFAULTS,
          id: init.id,
          members: init.members,
          ...(settings.faults === undefined ? {} : { unsafeTestingFaults: settings.faults }),
        },
        init.rng,
        init.durable ?? initialBasicDurable<string>(),
      );
      return new ObservedCore(node, basicEvidence);
    },

    emptyDurable: () => initialBasicDurable<string>(),

    // Copy-on-write: the fold returns a fresh object and never keeps the item.
    applyPersist: (durable, item) => applyBasicPersist(durable, item),

    createMonitor(view) {
      const majority = ThresholdQuorum.majorityOf(view.members);
      return evidenceMonitor(
        new PaxosSafety<ProposalId, string>({
          order: proposalIdOrder,
          quorumFor: () => majority,
          valueKey: (v) => v,
          wasProposed: (v, proposed) => proposed.has(v),
        }),
      );
    },

    createWorkload(ctx) {
      return new DecreeWorkload<BasicSimTypes>(ctx, {
        attempt: (_client, value, target) => [{ node: target, req: { type: 'propose', value } }],
        decided: (reply) => (reply.type === 'chosen' ? reply.value : undefined),
      });
    },
  };
}

export const basicPaxosSim = basicPaxosSimProtocol({
  name: 'paxos',
  description: 'single-decree Basic Paxos: clients race to get their value chosen',
});
