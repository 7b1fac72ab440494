import { assert } from '../../kernel/assert.ts';
import type { ClientId } from '../../kernel/ids.ts';
import { type KvCommand, type KvResult, KvStateMachine } from '../../kv/machine.ts';
import { checkKvOp, isReadOp } from '../../kv/validate.ts';
import {
  decodeKvSnapshot,
  encodeKvSnapshot,
  KvSnapshotFormatError,
} from '../../replica/snapshot-codec.ts';
import { consensusTimeoutMs, tokenHoldMs, tokenTimeoutMs } from '../../totem/config.ts';
import type { TotemUnsafeTestingFaults } from '../../totem/node.ts';
import {
  applyReplicaPersist,
  emptyReplicaDurable,
  type MachineBinding,
  REPLICA_DEFAULTS,
  type ReplicaDurable,
  type ReplicaSettings,
  type ReplicaTypes,
  type ReplicatedMachine,
  type ReplicaUnsafeTestingFaults,
  TotemReplica,
} from '../../totem/replica.ts';
import type { Monitor, SimProtocol, Workload } from '../protocol.ts';
import { defaultKvSettings, type KvAdapter, KvWorkload } from '../workload/kv.ts';
import { linearizabilityCheck } from '../workload/linearizable.ts';
import { TotemMonitor, TotemRun } from './monitor.ts';
import { simTotemConfig } from './plugin.ts';

/**
 * `quorate sim totem --workload kv` (protocol `totem-kv`): the KV state machine replicated by
 * Totem (src/totem/replica.ts), under the same Jepsen-style clients as Raft and Multi-Paxos;
 * the history must be linearizable, and every Totem check (monitor.ts) still runs on the
 * ring underneath.
 */
export type TotemKvTypes = ReplicaTypes<KvCommand, KvResult>;
export type TotemKvDurable = ReplicaDurable<KvCommand>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The KV machine behind the replica's interface: it numbers the commands it applies. */
class KvMachine implements ReplicatedMachine<KvCommand, KvResult> {
  constructor(
    private readonly machine: KvStateMachine,
    private count: number,
  ) {}

  applied(): number {
    return this.count;
  }

  apply(cmd: KvCommand): KvResult {
    return this.machine.apply(++this.count, cmd);
  }

  snapshot(): Uint8Array {
    return encodeKvSnapshot(this.machine.snapshot());
  }
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}

export const kvBinding: MachineBinding<KvCommand, KvResult> = {
  empty: () => new KvMachine(new KvStateMachine(), 0),
  restore(bytes) {
    // The replicas' own snapshot codec: format-checked, and byte-exact for byte-string keys.
    let machine: KvStateMachine;
    try {
      machine = decodeKvSnapshot(bytes);
    } catch (err) {
      if (err instanceof KvSnapshotFormatError || err instanceof SyntaxError) return undefined;
      throw err;
    }
    return new KvMachine(machine, machine.appliedIndex);
  },
  encode: (cmd) => encoder.encode(JSON.stringify(cmd)),
  decode(bytes) {
    const v = parseJson(bytes) as { session?: unknown; seq?: unknown; op?: unknown } | undefined;
    if (typeof v !== 'object' || v === null) return undefined;
    const { session, seq } = v;
    if (!Number.isSafeInteger(session) || !Number.isSafeInteger(seq)) return undefined;
    const op = checkKvOp(v.op);
    if (!op.ok) return undefined;
    return { session: session as number, seq: seq as number, op: op.value };
  },
  isRead: (cmd) => isReadOp(cmd.op),
};

/** How the KV clients talk to a Totem replica: one session per client, retries deduplicated. */
export const totemKvAdapter: KvAdapter<TotemKvTypes> = {
  request(op, requestId, client: ClientId, attemptId) {
    return { type: 'command', attempt: attemptId, cmd: { session: client, seq: requestId, op } };
  },
  attemptIdOf(reply) {
    return reply.type === 'status' ? -1 : reply.attempt;
  },
  classify(reply) {
    switch (reply.type) {
      case 'applied': {
        const r = reply.result;
        switch (r.f) {
          case 'get':
            return { kind: 'ok', value: r.entry?.value ?? null };
          case 'cas':
            return r.ok ? { kind: 'ok', value: null } : { kind: 'fail', reason: 'cas mismatch' };
          case 'stale':
            return { kind: 'unknown' };
          default:
            return { kind: 'ok', value: null };
        }
      }
      case 'refused':
        return { kind: 'redirect', hint: undefined };
      case 'unknown':
        return { kind: 'unknown' };
      case 'status':
        return { kind: 'unknown' };
    }
  },
  dedupsRetries: true,
};

export interface TotemKvSimSettings {
  readonly name: string;
  readonly description: string;
  readonly replica?: ReplicaSettings;
  readonly ringFaults?: TotemUnsafeTestingFaults;
  readonly faults?: ReplicaUnsafeTestingFaults;
}

/** A KV workload that tells the Totem checks when the faults end. */
class TotemKvWorkload extends KvWorkload<TotemKvTypes> {
  private started: { now(): number } | undefined;

  constructor(
    ctx: ConstructorParameters<typeof KvWorkload<TotemKvTypes>>[0],
    private readonly run: TotemRun,
    attemptTimeoutMs: number,
  ) {
    super(ctx, totemKvAdapter, linearizabilityCheck(), { ...defaultKvSettings, attemptTimeoutMs });
  }

  override start(io: Parameters<Workload<TotemKvTypes>['start']>[0]): void {
    this.started = io;
    super.start(io);
  }

  override heal(): void {
    this.run.healedAt = this.started!.now();
    super.heal();
  }
}

export function totemKvSimProtocol(
  settings: TotemKvSimSettings,
): SimProtocol<TotemKvTypes, TotemKvDurable> {
  let run: TotemRun | undefined;
  const replica = settings.replica ?? REPLICA_DEFAULTS;
  return {
    name: settings.name,
    description: settings.description,
    defaultNodes: 5,

    createCore(init) {
      const config = simTotemConfig(init.id, init.members);
      const durable = init.durable ?? emptyReplicaDurable<KvCommand>();
      return new TotemReplica(
        config,
        durable,
        init.now,
        kvBinding,
        replica,
        settings.ringFaults,
        settings.faults,
      );
    },

    emptyDurable: () => emptyReplicaDurable<KvCommand>(),

    applyPersist: (durable, item) => applyReplicaPersist(durable, item),

    createWorkload(ctx) {
      const config = simTotemConfig(ctx.members[0]!, ctx.members);
      run = new TotemRun(ctx.members, tokenTimeoutMs(config) + consensusTimeoutMs(config) + 1000);
      // An idle ring's representative holds the token (tokenHoldMs, 560 ms at five nodes),
      // and an answer waits two visits more: an attempt gets a hold and a few rotations.
      return new TotemKvWorkload(ctx, run, 2 * tokenHoldMs(config) + 400);
    },

    createMonitor(view) {
      assert(run !== undefined, 'the workload is made before the monitor');
      // The replica passes the ring's deliveries and events through unchanged, and answers
      // `status()` as the ring does, so the ring's own checks run as they are.
      const monitor = new TotemMonitor(
        view as unknown as ConstructorParameters<typeof TotemMonitor>[0],
        run,
      );
      run = undefined;
      return monitor as unknown as Monitor<TotemKvTypes, TotemKvDurable>;
    },
  };
}

export const totemKvSim = totemKvSimProtocol({
  name: 'totem-kv',
  description:
    'Totem as a replicated KV state machine: safe delivery, primary component only, linearizable',
});
