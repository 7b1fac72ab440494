import { assert } from '../../kernel/assert.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { DeliveryMode, TotemReply, TotemTypes } from '../../totem/types.ts';
import type { CheckOutcome, Workload, WorkloadContext, WorkloadIo } from '../protocol.ts';
import { originKey, type TotemRun } from './monitor.ts';

/**
 * Clients that publish to random nodes, agreed or safe, small (packed), medium and large
 * (fragmented) messages. A publish is answered once its node delivered it; one whose node
 * crashed before answering is lost with that process. After healing, each node gets one
 * more publish, and the run is done when the ring of all nodes formed, every publish to a
 * surviving process was answered, and every node delivered the post-heal ones.
 */
export interface PublishSettings {
  readonly thinkMeanMs: number;
  readonly safeShare: number;
  /** Share of messages above the mtu (fragmented). */
  readonly largeShare: number;
  readonly largeBytesMax: number;
}

export const defaultPublishSettings: PublishSettings = {
  thinkMeanMs: 120,
  safeShare: 0.4,
  largeShare: 0.05,
  largeBytesMax: 6000,
};

const PROBE_TIMER = 1;
const PROBE_POLL_MS = 50;

interface Outstanding {
  readonly node: NodeId;
  /** The node's incarnation when sent; -1 if it was down (the publish cannot arrive). */
  readonly incarnation: number;
}

export class PublishWorkload implements Workload<TotemTypes> {
  private io: WorkloadIo<TotemTypes> | undefined;
  private remaining: number;
  private nextRef = 0;
  private readonly outstanding = new Map<number, Outstanding>();
  private readonly probes = new Set<number>();
  private readonly probeKeys: string[] = [];
  private answered = 0;
  private refusals = 0;
  private healed = false;
  private probedRing: string | undefined = undefined;

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly run: TotemRun,
    private readonly settings: PublishSettings = defaultPublishSettings,
  ) {
    assert(ctx.members.length >= 1, 'a publish workload needs nodes');
    this.remaining = ctx.ops;
  }

  start(io: WorkloadIo<TotemTypes>): void {
    this.io = io;
    for (const c of this.ctx.clients) this.schedule(c);
  }

  private schedule(client: ClientId): void {
    const io = this.io!;
    io.setTimer(client, io.now() + this.ctx.rng.exponential(this.settings.thinkMeanMs), 0);
  }

  private payload(ref: number): Uint8Array {
    const rng = this.ctx.rng;
    const s = this.settings;
    const size = rng.chance(s.largeShare)
      ? rng.range(1400, s.largeBytesMax)
      : rng.chance(0.2)
        ? rng.range(200, 1300)
        : rng.range(4, 200);
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (ref * 31 + i) & 0xff;
    return data;
  }

  private publish(client: ClientId, node: NodeId): number {
    const io = this.io!;
    const ref = ++this.nextRef;
    const mode: DeliveryMode = this.ctx.rng.chance(this.settings.safeShare) ? 'safe' : 'agreed';
    const up = this.run.isUp(node);
    this.outstanding.set(ref, { node, incarnation: up ? this.run.incarnationOf(node) : -1 });
    io.send(client, node, { type: 'publish', mode, data: this.payload(ref), ref });
    return ref;
  }

  onTimer(client: ClientId, token: number): void {
    if (token === PROBE_TIMER) {
      this.maybeProbe(client);
      return;
    }
    if (this.remaining <= 0 || this.healed) return;
    this.remaining--;
    this.publish(client, this.ctx.rng.pick(this.ctx.members));
    this.schedule(client);
  }

  onReply(_client: ClientId, _from: NodeId, reply: TotemReply): void {
    if (reply.type === 'status') return;
    if (!this.outstanding.delete(reply.ref)) return;
    if (reply.type === 'published') {
      this.answered++;
      if (this.probes.has(reply.ref)) this.probeKeys.push(originKey(reply.origin));
    } else this.refusals++;
  }

  exhausted(): boolean {
    return this.remaining <= 0;
  }

  heal(): void {
    this.healed = true;
    this.run.healedAt = this.io!.now();
    this.maybeProbe(this.ctx.clients[0]!);
  }

  /**
   * Once the ring of all nodes formed, each node gets one publish that every node must
   * deliver (published earlier, a merge would rightly not carry it to the other side).
   */
  private maybeProbe(client: ClientId): void {
    const io = this.io!;
    io.setTimer(client, io.now() + PROBE_POLL_MS, PROBE_TIMER);
    const ring = this.run.formedRing;
    // A ring formed at the moment of healing may already be breaking up (a token lost to an
    // earlier fault): each new ring of all nodes gets its own round of publishes.
    if (ring === undefined || ring === this.probedRing) return;
    this.probedRing = ring;
    this.probes.clear();
    this.probeKeys.length = 0;
    const clients = this.ctx.clients;
    this.ctx.members.forEach((node, i) => {
      this.probes.add(this.publish(clients[i % clients.length]!, node));
    });
  }

  /** Publishes still owed an answer: sent to a process that is still alive. */
  private owed(): number[] {
    const out: number[] = [];
    for (const [ref, o] of this.outstanding) {
      if (o.incarnation === this.run.incarnationOf(o.node)) out.push(ref);
    }
    return out;
  }

  done(): boolean {
    if (!this.healed || this.run.formedRing === undefined) return false;
    if (this.run.formedRing !== this.probedRing) return false;
    if (this.probes.size === 0 || this.owed().length > 0) return false;
    if (this.probeKeys.length < this.probes.size) return false;
    return this.probeKeys.every((k) => this.run.deliveredEverywhere(k));
  }

  describePending(): string {
    const owed = this.owed().slice(0, 5);
    const where = owed.map((r) => `#${r}@n${this.outstanding.get(r)!.node}`).join(', ');
    const probes = `${this.probeKeys.length}/${this.probes.size} post-heal publishes answered`;
    const ring = this.run.formedAt === undefined ? 'no ring of all nodes' : 'ring formed';
    return `${this.owed().length} publishes unanswered (${where}); ${probes}; ${ring}`;
  }

  check(): CheckOutcome {
    return {
      verdict: 'pass',
      summary: `${this.answered} publishes delivered, ${this.refusals} refused`,
    };
  }
}
