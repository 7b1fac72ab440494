import type { Envelope } from '../../kernel/envelope.ts';
import type { NodeId } from '../../kernel/ids.ts';
import type { MerkleNode } from './node.ts';
import { type MerkleMsg, messageBytes } from './wire.ts';

/**
 * Lockstep delivery between Merkle replicas for tests and the bench: each `wave` delivers
 * every message in flight (one one-way delay), so a repair's waves / 2 are its round trips
 * and the byte count is exact under the wire model.
 */
export class MerkleLockstep {
  readonly inFlight: Envelope<MerkleMsg>[] = [];
  bytes = 0;
  messages = 0;
  waves = 0;

  constructor(
    readonly nodes: ReadonlyMap<NodeId, MerkleNode>,
    private readonly wavesMax = 1_000,
  ) {}

  /** Take every node's pending batch: count and queue its messages. */
  collect(): void {
    for (const node of this.nodes.values()) {
      for (;;) {
        const rd = node.ready();
        if (rd === undefined) break;
        for (const o of [...rd.early, ...rd.messages]) {
          this.inFlight.push({ from: node.id, to: o.to, msg: o.msg });
          this.bytes += messageBytes(o.msg);
          this.messages += 1;
        }
        node.advance();
      }
    }
  }

  /** Deliver everything in flight once; returns how many were delivered. */
  wave(now: number): number {
    this.collect();
    const batch = this.inFlight.splice(0);
    for (const env of batch) this.nodes.get(env.to)?.receive(now, env.from, env.msg);
    if (batch.length > 0) this.waves += 1;
    this.collect();
    return batch.length;
  }

  /** Waves until quiet; throws past `wavesMax` (a repair that never ends is a bug). */
  settle(now: number): void {
    for (let i = 0; i < this.wavesMax; i++) if (this.wave(now) === 0) return;
    throw new Error(`no quiet after ${this.wavesMax} waves`);
  }

  resetCounts(): void {
    this.bytes = 0;
    this.messages = 0;
    this.waves = 0;
  }
}
