import type { Json } from '../../check/history.ts';
import {
  awarenessScaledMs,
  GOSSIP_DEFAULTS,
  type GossipConfig,
  type GossipUnsafeTestingFaults,
  suspicionMaxTimeoutMs,
  suspicionMinTimeoutMs,
} from '../../gossip/config.ts';
import { applyGossipPersist, initialGossipDurable } from '../../gossip/index.ts';
import { GossipNode } from '../../gossip/node.ts';
import type { GossipDurable, GossipMsg, GossipTypes } from '../../gossip/types.ts';
import type { FaultControl, ProtocolFault, SimProtocol } from '../protocol.ts';
import { GossipMonitor, gossipNodeOf } from './monitor.ts';
import { ObservedGossip, WireLedger } from './observed.ts';
import { EventWorkload, type EventWorkloadSettings } from './workload.ts';

export interface GossipSimSettings {
  readonly name: string;
  readonly description: string;
  /** Overrides of the core's settings (GOSSIP_DEFAULTS otherwise). */
  readonly config?: Partial<Omit<GossipConfig, 'id' | 'seeds'>>;
  readonly faults?: GossipUnsafeTestingFaults;
  readonly workload?: Partial<EventWorkloadSettings>;
  /** Encode every k-th datagram to hold the byte model to the codec (default 8; 1: all). */
  readonly encodeEvery?: number;
  /** Count messages and bytes from this local time on (bandwidth measurements). */
  readonly windowFromMs?: number;
}

export const defaultEventWorkload: Omit<EventWorkloadSettings, 'minorityConvergeMs'> = {
  publishWindowMs: 15_000,
  safetyMs: 20_000,
  convergeMs: 30_000,
  convergeCheckMs: 500,
};

/**
 * How long the survivors of a cluster that lost most of its members may take to converge.
 * The 30 s window holds while most probes are answered. When most members are gone, most
 * of a survivor's probes fail and its indirect probers (gone too) send no nacks, so
 * Lifeguard raises its health score to the maximum and stretches its probe interval and
 * timeout awarenessMax-fold, as it is meant to: the survivor cannot tell that it is not
 * the slow one. Its bound is then one member waiting 2(n−1)−1 probes (each round is a
 * fresh shuffle: first in one, last in the next) at the stretched interval, that probe's
 * interval, the longest suspicion, and `convergeMs` for the verdicts to spread
 * (118 s at n = 5, 855 s at n = 50).
 */
export function minorityConvergeMs(
  c: Pick<
    GossipConfig,
    'probeIntervalMs' | 'awarenessMax' | 'suspicionMult' | 'suspicionMaxTimeoutMult'
  >,
  n: number,
  convergeMs: number,
): number {
  const probeMs = awarenessScaledMs(c.probeIntervalMs, c.awarenessMax - 1);
  const untilProbedMs = Math.max(1, 2 * (n - 1) - 1) * probeMs;
  const minMs = suspicionMinTimeoutMs(c.suspicionMult, n, c.probeIntervalMs);
  return (
    untilProbedMs + probeMs + suspicionMaxTimeoutMs(minMs, c.suspicionMaxTimeoutMult) + convergeMs
  );
}

/**
 * The protocol fault `leave`: a member leaves gracefully, or a node that left joins again
 * late through random seeds (the simulator's nodes that join late and leave).
 */
const leaveFault: ProtocolFault<GossipTypes, GossipDurable> = {
  name: 'leave',
  apply(control: FaultControl<GossipTypes, GossipDurable>, rng): Json | undefined {
    const view = control.view;
    const up = view.members.filter((id) => view.isUp(id) && !view.isPaused(id));
    const idle = up.filter((id) => gossipNodeOf(view, id)?.currentMode === 'idle');
    const members = up.filter((id) => gossipNodeOf(view, id)?.currentMode === 'member');
    if (idle.length > 0 && (rng.chance(0.5) || members.length <= view.members.length / 2)) {
      const node = rng.pick(idle);
      control.request(node, { type: 'join', seeds: view.members.filter((id) => id !== node) });
      return { join: node };
    }
    if (members.length <= Math.max(1, view.members.length / 2)) return undefined;
    const node = rng.pick(members);
    control.request(node, { type: 'leave' });
    return { leave: node };
  },
};

function describeMessage(msg: GossipMsg): Json {
  switch (msg.type) {
    case 'push-pull':
      return {
        type: msg.type,
        reply: msg.reply,
        join: msg.join,
        members: msg.members.length,
        events: msg.events.length,
      };
    case 'events':
      return { type: msg.type, events: msg.events.length };
    default:
      return msg as unknown as Json;
  }
}

/** Builds the plugin; tests build the broken variants and the benchmarks their settings the same way. */
export function gossipSimProtocol(settings: GossipSimSettings): SimProtocol<
  GossipTypes,
  GossipDurable
> & {
  lastMonitor(): GossipMonitor | undefined;
  lastLedger(): WireLedger | undefined;
} {
  const base = { ...GOSSIP_DEFAULTS, ...settings.config };
  const workload = { ...defaultEventWorkload, ...settings.workload };
  let ledger: WireLedger | undefined;
  let monitor: GossipMonitor | undefined;
  return {
    name: settings.name,
    description: settings.description,
    defaultNodes: 5,
    simDefaults: {
      restartAtHeal: false,
      safetyMsMax: workload.safetyMs * 3,
      // A backstop only: the workload ends every run by its own window (see heal()), which
      // depends on the size and on who is live at healing.
      livenessMs: 24 * 3_600_000,
      ops: 50,
    },
    faults: [leaveFault],

    createCore(init) {
      const config: GossipConfig = {
        ...base,
        id: init.id,
        seeds: init.members.filter((m) => m !== init.id),
        tags: `n${init.id}`,
        ...(settings.faults === undefined ? {} : { unsafeTestingFaults: settings.faults }),
      };
      const node = new GossipNode(config, init.rng, init.durable, init.now);
      return new ObservedGossip(node, ledger!);
    },

    emptyDurable: () => initialGossipDurable,
    applyPersist: (durable, item) => applyGossipPersist(durable, item),

    createMonitor(view) {
      ledger = new WireLedger(base.packetBytesMax, settings.encodeEvery ?? 8);
      if (settings.windowFromMs !== undefined) ledger.windowFromMs = settings.windowFromMs;
      monitor = new GossipMonitor(view, ledger, base.retransmitMult);
      return monitor;
    },

    createWorkload: (ctx) => {
      const n = ctx.members.length;
      const s = {
        minorityConvergeMs: minorityConvergeMs(base, n, workload.convergeMs),
        ...workload,
      };
      const view = () => monitor!.view;
      return new EventWorkload(
        ctx,
        s,
        () => monitor?.atEnd(view()) === undefined,
        // A leaving node still counts as live at healing but is gone leaveGraceMs later.
        () => {
          const staying = ctx.members.filter((id) => {
            const mode = gossipNodeOf(view(), id)?.currentMode;
            return mode === 'member' || mode === 'joining';
          });
          return 2 * staying.length <= n;
        },
      );
    },
    describeMessage,
    lastMonitor: () => monitor,
    lastLedger: () => ledger,
  };
}

export const gossipSim = gossipSimProtocol({
  name: 'gossip',
  description: 'SWIM + Lifeguard membership with user events: views converge, no false deaths',
});
