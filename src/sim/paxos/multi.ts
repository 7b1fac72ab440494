import type { Json } from '../../check/history.ts';
import type { Ready } from '../../kernel/core.ts';
import { ThresholdQuorum } from '../../kernel/quorum.ts';
import type { KvCommand } from '../../kv/machine.ts';
import type { ProposalId } from '../../paxos/ballot.ts';
import { proposalIdOrder } from '../../paxos/invariants.ts';
import { applyMultiPersist, initialMultiDurable } from '../../paxos/multi/durable.ts';
import {
  MULTI_PAXOS_DEFAULTS,
  type MultiPaxosConfig,
  type MultiUnsafeTestingFaults,
} from '../../paxos/multi/node.ts';
import type { Batch } from '../../paxos/multi/types.ts';
import { multiPaxosKvBinding } from '../../replica/bindings.ts';
import {
  defaultMultiKvReplicaOptions,
  type MultiKvDurable,
  type MultiKvReplicaOptions,
  MultiPaxosKvReplica,
  type MultiPaxosKvTypes,
} from '../../replica/multipaxos-kv.ts';
import {
  defaultRouterOptions,
  Router,
  type RouterOptions,
  type RouterTypes,
  type RouterUnsafeTestingFaults,
} from '../../replica/router.ts';
import type { SimProtocol, WorkloadContext } from '../protocol.ts';
import { SIM_CALL_TIMEOUT_MS } from '../raft/plugin.ts';
import { KvWorkload } from '../workload/kv.ts';
import { defaultLeaseSettings, withLeaseClient } from '../workload/lease.ts';
import { linearizabilityCheck } from '../workload/linearizable.ts';
import { routedKvAdapter } from '../workload/routed.ts';
import {
  type BatchEvidence,
  type Commitment,
  type EvidenceReader,
  evidenceMonitor,
  ObservedCore,
  PaxosSafety,
} from './safety.ts';

/**
 * `quorate sim multipaxos`: the Multi-Paxos key-value replica (src/replica/multipaxos-kv.ts)
 * under the key-value workload. After every step the Paxos checks run per log instance
 * (one promise, one chosen batch per instance, batches made of proposed commands, learners
 * agree); at the end the clients' history must be linearizable.
 */
export type MultiSimDurable = MultiKvDurable;

/** A simulated Multi-Paxos node, hosted whole: the call router in front of the replica. */
export type MultiNodeTypes = RouterTypes<MultiPaxosKvTypes>;
type Observed = ObservedCore<MultiPaxosKvTypes, MultiPaxosKvReplica, ProposalId, Batch<KvCommand>>;

const multiRouterBinding = multiPaxosKvBinding<Observed>((o) => o.inner);

function commandKey(cmd: KvCommand): string {
  return JSON.stringify({ session: cmd.session, seq: cmd.seq, op: cmd.op });
}

type Evidence = BatchEvidence<ProposalId, Batch<KvCommand>>;

const multiEvidence: EvidenceReader<
  MultiPaxosKvTypes,
  MultiPaxosKvReplica,
  ProposalId,
  Batch<KvCommand>
> = {
  read(batch: Ready<MultiPaxosKvTypes>, replica: MultiPaxosKvReplica): Evidence {
    const commitments: Commitment<ProposalId, Batch<KvCommand>>[] = [];
    for (const p of batch.persist) {
      if (p.type === 'promise') commitments.push({ kind: 'promise', ballot: p.ballot });
      else if (p.type === 'accept') {
        commitments.push({
          kind: 'accept',
          instance: p.instance,
          ballot: p.ballot,
          value: p.value,
        });
      }
    }
    const learned: [number, Batch<KvCommand>][] = [];
    for (const d of batch.deliver) if (d.type === 'chosen') learned.push([d.instance, d.value]);
    return { commitments, view: replica.paxos.acceptorView(), learned };
  },
  proposals: (req) => [commandKey({ session: req.session, seq: req.seq, op: req.op })],
};

/**
 * Timing for the simulator's clocks: the nemesis drifts node clocks by up to 15% at the
 * default intensity (30% at full), so the lease keeps a drift margin of half its length:
 * (lease - margin) / (1 - drift) must stay below lease / (1 + drift).
 */
export function simMultiPaxosConfig(
  overrides: Partial<MultiPaxosConfig> = {},
): Omit<MultiPaxosConfig, 'id' | 'members'> {
  return { ...MULTI_PAXOS_DEFAULTS, clockDriftMarginMs: 100, ...overrides };
}

export interface MultiSimSettings {
  readonly name: string;
  readonly description: string;
  readonly paxos?: Partial<MultiPaxosConfig>;
  readonly replica: MultiKvReplicaOptions;
  readonly faults?: MultiUnsafeTestingFaults;
  /** Deliberate bugs in the call router, for the broken-variant tests. */
  readonly router?: RouterUnsafeTestingFaults;
}

/** Builds the plugin; tests build the deliberately broken variants the same way. */
export function multiPaxosSimProtocol(
  settings: MultiSimSettings,
): SimProtocol<MultiNodeTypes, MultiSimDurable> {
  const timing = simMultiPaxosConfig(settings.paxos);
  const routerOptions: RouterOptions = {
    ...defaultRouterOptions,
    callTimeoutMs: SIM_CALL_TIMEOUT_MS,
    ...(settings.router === undefined ? {} : { unsafeTestingFaults: settings.router }),
  };
  return {
    name: settings.name,
    description: settings.description,
    defaultNodes: 5,

    createCore(init) {
      const config: MultiPaxosConfig = {
        ...timing,
        id: init.id,
        members: init.members,
        ...(settings.faults === undefined ? {} : { unsafeTestingFaults: settings.faults }),
      };
      const durable = init.durable ?? initialMultiDurable<KvCommand, Uint8Array>();
      const replica = MultiPaxosKvReplica.restore(config, init.rng, durable, settings.replica);
      return new Router(
        new ObservedCore(replica, multiEvidence),
        multiRouterBinding,
        routerOptions,
      );
    },

    emptyDurable: () => initialMultiDurable<KvCommand, Uint8Array>(),

    // Copy-on-write: the fold builds new maps and never mutates the previous state.
    applyPersist: (durable, item) => applyMultiPersist(durable, item),

    createMonitor(view) {
      const majority = ThresholdQuorum.majorityOf(view.members);
      return evidenceMonitor(
        new PaxosSafety<ProposalId, Batch<KvCommand>>({
          order: proposalIdOrder,
          quorumFor: () => majority,
          valueKey: (batch) => JSON.stringify(batch),
          // The empty batch is the no-op a new leader fills gaps with.
          wasProposed: (batch, proposed) => batch.every((c) => proposed.has(commandKey(c.command))),
        }),
        (core) => (core as Router<MultiPaxosKvTypes, Observed>).replica,
      );
    },

    createWorkload(ctx) {
      const kv = (c: WorkloadContext) =>
        new KvWorkload<MultiNodeTypes>(
          c,
          routedKvAdapter<MultiPaxosKvTypes>(SIM_CALL_TIMEOUT_MS),
          linearizabilityCheck(),
        );
      // Past the TTL after healing: one election (600 ms at most) and one poll (100 ms). The
      // latest seen in 300 seeds at 5 nodes, all faults, was 529 ms.
      const leases = { ...defaultLeaseSettings, revokeSlackMs: 700 };
      return withLeaseClient<MultiPaxosKvTypes>(ctx, kv, SIM_CALL_TIMEOUT_MS, leases);
    },

    describeMessage(msg) {
      // Snapshot bytes would bloat the trace; their size is what a viewer needs.
      if (msg.type === 'snapshot')
        return { type: 'snapshot', upTo: msg.upTo, bytes: msg.data.length };
      return msg as unknown as Json;
    },
  };
}

export const multiPaxosSim = multiPaxosSimProtocol({
  name: 'multipaxos',
  description:
    'Multi-Paxos key-value replica (leases, batching, pipelining, catch-up, snapshots) under a key-value workload',
  replica: { ...defaultMultiKvReplicaOptions, snapshotEveryInstances: 64 },
});
