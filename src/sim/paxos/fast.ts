import type { Ready } from '../../kernel/core.ts';
import type { NodeId } from '../../kernel/ids.ts';
import type { FastUnsafeTestingFaults } from '../../paxos/fast/acceptor.ts';
import { FastPaxosClient } from '../../paxos/fast/client.ts';
import { applyFastPersist, initialFastDurable } from '../../paxos/fast/durable.ts';
import { defaultFastQuorums, FAST_PAXOS_DEFAULTS, FastPaxosNode } from '../../paxos/fast/node.ts';
import {
  compareRounds,
  type FastQuorums,
  type FastRound,
  formatRound,
} from '../../paxos/fast/round.ts';
import type { FastDurable, FastTypes } from '../../paxos/fast/types.ts';
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
 * `quorate sim fastpaxos`: single-decree Fast Paxos. Node 1 opens a fast round at start;
 * clients send their value straight to every acceptor (`FastPaxosClient`), so concurrent
 * proposals collide and exercise recovery; a value is chosen by a fast quorum in a fast
 * round and by a classic quorum otherwise, and the checks use exactly those quorums.
 */
export type FastSimTypes = FastTypes<string>;
export type FastSimDurable = FastDurable<string>;

type Node = FastPaxosNode<string>;

const fastEvidence: EvidenceReader<FastSimTypes, Node, FastRound, string> = {
  read(batch: Ready<FastSimTypes>, core: Node): BatchEvidence<FastRound, string> {
    const commitments: Commitment<FastRound, string>[] = [];
    for (const p of batch.persist) {
      if (p.type === 'promise') commitments.push({ kind: 'promise', ballot: p.round });
      else if (p.type === 'vote') {
        commitments.push({ kind: 'accept', instance: 0, ballot: p.round, value: p.value });
      }
    }
    const { promised, vote } = core.acceptorView();
    const view = {
      promised,
      accepted: vote === null ? [] : [{ instance: 0, ballot: vote.round, value: vote.value }],
    };
    return { commitments, view, learned: batch.deliver.map((d) => [0, d.value] as const) };
  },
  proposals: (req) => [req.value],
};

export interface FastSimSettings {
  readonly name: string;
  readonly description: string;
  readonly recovery: 'coordinated' | 'uncoordinated';
  /** Quorums other than the defaults (a broken variant uses ones that do not intersect). */
  readonly quorums?: (members: readonly NodeId[]) => FastQuorums;
  readonly faults?: FastUnsafeTestingFaults;
}

/** Builds the plugin; tests build the deliberately broken variants the same way. */
export function fastPaxosSimProtocol(
  settings: FastSimSettings,
): SimProtocol<FastSimTypes, FastSimDurable> {
  const quorumsOf = settings.quorums ?? defaultFastQuorums;
  return {
    name: settings.name,
    description: settings.description,
    defaultNodes: 5,

    createCore(init) {
      const node = new FastPaxosNode<string>(
        {
          ...FAST_PAXOS_DEFAULTS,
          recovery: settings.recovery,
          id: init.id,
          members: init.members,
          initialCoordinator: init.members[0]!,
          quorums: quorumsOf(init.members),
          ...(settings.faults === undefined ? {} : { unsafeTestingFaults: settings.faults }),
        },
        init.rng,
        init.durable ?? initialFastDurable<string>(),
      );
      return new ObservedCore(node, fastEvidence);
    },

    emptyDurable: () => initialFastDurable<string>(),

    applyPersist: (durable, item) => applyFastPersist(durable, item),

    createMonitor(view) {
      const q = quorumsOf(view.members);
      return evidenceMonitor(
        new PaxosSafety<FastRound, string>({
          order: { compare: compareRounds, key: formatRound },
          quorumFor: (round) => (round.fast ? q.fast : q.classic),
          valueKey: (v) => v,
          wasProposed: (v, proposed) => proposed.has(v),
        }),
      );
    },

    createWorkload(ctx) {
      return new DecreeWorkload<FastSimTypes>(ctx, {
        attempt(client, value, target, probe) {
          if (probe) return [{ node: target, req: { type: 'propose', value } }];
          // Straight to every acceptor: the fast path. A helper per proposal, since each
          // of a simulated client's proposals is a separate one-value client.
          const sends = new FastPaxosClient<string>(client, ctx.members).propose(value);
          return sends.map((s) => ({ node: s.to, req: s.request }));
        },
        decided: (reply) => (reply.type === 'chosen' ? reply.value : undefined),
      });
    },
  };
}

export const fastPaxosSim = fastPaxosSimProtocol({
  name: 'fastpaxos',
  description: 'single-decree Fast Paxos: clients send straight to acceptors, collisions recover',
  recovery: 'coordinated',
});
