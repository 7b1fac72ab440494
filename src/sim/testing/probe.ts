import { assert } from '../../kernel/assert.ts';
import { type Core, type CoreTypes, OutputBuffer, type Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { CheckOutcome, SimProtocol, Workload, WorkloadIo } from '../protocol.ts';

/**
 * A probe protocol for the simulator's own tests (not a product feature). Every
 * `periodMs` of local time a node writes a batch of numbered items (1, 2, 3...) and, in the
 * same batch, pings every peer and delivers the items: so the host may act on a batch only
 * once all of it is durable, and a crash may tear the batch being written. The core records
 * the local times it was stepped with and the pings it received, for clock and pause tests.
 */
export interface ProbeTypes extends CoreTypes {
  readonly msg: { readonly seq: number };
  readonly persist: number;
  readonly deliver: number;
  readonly request: string;
  readonly reply: string;
  readonly event: string;
}

export interface ProbeSettings {
  readonly periodMs: number;
  readonly batchSize: number;
  /** The workload ends the safety phase at this global time. */
  readonly durationMs: number;
}

export class ProbeCore implements Core<ProbeTypes> {
  readonly out = new OutputBuffer<ProbeTypes>();
  /** Local times passed to tick. */
  readonly tickTimes: number[] = [];
  /** Client requests received: [client, request]. */
  readonly requests: [ClientId, string][] = [];
  /** Pings received: [from, seq]. */
  readonly received: [NodeId, number][] = [];
  written: number;
  private nextAt: number;
  private pings = 0;

  constructor(
    readonly id: NodeId,
    private readonly peers: readonly NodeId[],
    durable: readonly number[] | undefined,
    readonly bootedAt: number,
    private readonly settings: ProbeSettings,
  ) {
    const items = durable ?? [];
    items.forEach((item, i) => {
      assert(item === i + 1, `disk holds a gap at ${i + 1}: ${item}`);
    });
    this.written = items.length;
    this.nextAt = bootedAt + settings.periodMs;
    this.out.emit(durable === undefined ? 'boot' : `restart@${this.written}`);
  }

  tick(now: number): void {
    this.tickTimes.push(now);
    if (now < this.nextAt) return;
    this.nextAt = now + this.settings.periodMs;
    for (let i = 0; i < this.settings.batchSize; i++) {
      this.written++;
      this.out.persist(this.written);
      this.out.deliver(this.written);
    }
    this.pings++;
    for (const p of this.peers) this.out.send(p, { seq: this.pings });
  }

  receive(_now: number, from: NodeId, msg: { seq: number }): void {
    this.received.push([from, msg.seq]);
  }

  request(_now: number, client: ClientId, req: string): void {
    this.requests.push([client, req]);
    this.out.reply(client, req);
  }

  deadline(): number {
    return this.nextAt;
  }

  ready(): Ready<ProbeTypes> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }
}

/** Runs no client operations; it only holds the safety phase open for `durationMs`. */
class TimedWorkload implements Workload<ProbeTypes> {
  private io: WorkloadIo<ProbeTypes> | undefined;
  private healed = false;

  constructor(private readonly durationMs: number) {}

  start(io: WorkloadIo<ProbeTypes>): void {
    this.io = io;
  }
  onReply(): void {}
  onTimer(): void {}
  exhausted(): boolean {
    return this.io !== undefined && this.io.now() >= this.durationMs;
  }
  heal(): void {
    this.healed = true;
  }
  done(): boolean {
    return this.healed;
  }
  describePending(): string {
    return 'nothing';
  }
  check(): CheckOutcome {
    return { verdict: 'pass', summary: 'probe' };
  }
}

/**
 * The probe as a plugin. Its monitor checks the durability rule from outside: whatever a
 * node delivered (acted on) must already be on its disk.
 */
export function probeProtocol(settings: ProbeSettings): SimProtocol<ProbeTypes, number[]> {
  return {
    name: 'probe',
    description: 'simulator self-test protocol',
    defaultNodes: 3,
    faults: [
      {
        // A protocol-specific fault as plugins provide them: here, an admin request.
        name: 'poke',
        apply(control, rng) {
          const up = control.view.members.filter((m) => control.view.isUp(m));
          if (up.length === 0) return undefined;
          const node = rng.pick(up);
          control.request(node, 'poke');
          return { node };
        },
      },
    ],
    createCore: (init) =>
      new ProbeCore(
        init.id,
        init.members.filter((m) => m !== init.id),
        init.durable,
        init.now,
        settings,
      ),
    emptyDurable: () => [],
    applyPersist(durable, item) {
      durable.push(item);
      return durable;
    },
    createMonitor(view) {
      return {
        onDeliver(node, item) {
          const onDisk = view.durable(node).length;
          if (item <= onDisk) return undefined;
          return `node ${node} acted on item ${item} with only ${onDisk} on disk`;
        },
      };
    },
    createWorkload: () => new TimedWorkload(settings.durationMs),
  };
}
