import type { SimProtocol } from '../protocol.ts';
import { type KvAdapter, KvWorkload } from '../workload/kv.ts';
import { linearizabilityCheck } from '../workload/linearizable.ts';
import {
  type PbDurable,
  type PbRecord,
  type PbTypes,
  PrimaryBackupCore,
} from './primary-backup.ts';

/** How the key-value workload talks to the primary-backup fixture. */
export const primaryBackupKv: KvAdapter<PbTypes> = {
  request: (op, _requestId, _client, attemptId) => ({ id: attemptId, op }),
  attemptIdOf: (reply) => reply.id,
  classify(reply) {
    switch (reply.kind) {
      case 'ok':
        return { kind: 'ok', value: reply.value };
      case 'fail':
        return { kind: 'fail', reason: reply.reason };
      case 'redirect':
        return { kind: 'redirect', hint: reply.hint };
    }
  },
  dedupsRetries: false,
};

/**
 * The primary-backup fixture as a simulator protocol: key-value workload, linearizability
 * at the end, and one cheap invariant (a node's applied sequence numbers per key only grow
 * while its process lives), which the fixture keeps even when it loses writes.
 */
export const primaryBackup: SimProtocol<PbTypes, PbDurable> = {
  name: 'primary-backup',
  description: 'test fixture: an unfenced primary-backup register (loses writes in partitions)',
  defaultNodes: 3,

  createCore(init) {
    return new PrimaryBackupCore(init.id, init.members, init.durable, init.now);
  },

  emptyDurable() {
    return new Map();
  },

  applyPersist(durable, item: PbRecord) {
    durable.set(item.key, item);
    return durable;
  },

  createMonitor() {
    // Per node, the last applied sequence number per key (reset when the process dies).
    const applied = new Map<number, Map<string, number>>();
    return {
      onDeliver(node, item) {
        let keys = applied.get(node);
        if (keys === undefined) {
          keys = new Map();
          applied.set(node, keys);
        }
        const last = keys.get(item.key) ?? 0;
        keys.set(item.key, item.seq);
        if (item.seq > last) return undefined;
        return `node ${node} applied ${item.key}@${item.seq} after ${item.key}@${last}`;
      },
      onCrash(node) {
        applied.delete(node);
      },
    };
  },

  createWorkload(ctx) {
    return new KvWorkload<PbTypes>(ctx, primaryBackupKv, linearizabilityCheck());
  },
};
