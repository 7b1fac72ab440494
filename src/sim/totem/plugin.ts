import { assert } from '../../kernel/assert.ts';
import {
  consensusTimeoutMs,
  TOTEM_DEFAULTS,
  type TotemConfig,
  tokenTimeoutMs,
} from '../../totem/config.ts';
import { TotemNode, type TotemUnsafeTestingFaults } from '../../totem/node.ts';
import {
  applyTotemPersist,
  EMPTY_TOTEM_DURABLE,
  type TotemDurable,
  type TotemTypes,
} from '../../totem/types.ts';
import type { SimProtocol } from '../protocol.ts';
import { TotemMonitor, TotemRun } from './monitor.ts';
import { PublishWorkload } from './workload.ts';

/**
 * `quorate sim totem`: Totem nodes under publishing clients, with the Totem checks after
 * every step (monitor.ts). The token timeout is corosync's 1 s setting rather than its 3 s
 * default, so that re-forming after heal (token + consensus + 1 s) fits the run's
 * liveness bound at five nodes; the per-member coefficient stays corosync's.
 */
export const SIM_TOTEM_TIMING: Partial<TotemConfig> = { tokenBaseMs: 1000 };

export interface TotemSimSettings {
  readonly name: string;
  readonly description: string;
  readonly totem?: Partial<TotemConfig>;
  readonly faults?: TotemUnsafeTestingFaults;
}

export function simTotemConfig(
  id: number,
  members: readonly number[],
  overrides: Partial<TotemConfig> = {},
): TotemConfig {
  return { ...TOTEM_DEFAULTS, ...SIM_TOTEM_TIMING, observe: true, ...overrides, id, members };
}

/** Builds the plugin; tests build the deliberately broken variants the same way. */
export function totemSimProtocol(
  settings: TotemSimSettings,
): SimProtocol<TotemTypes, TotemDurable> {
  // The workload is made just before the monitor for each run; the two share this run state.
  let run: TotemRun | undefined;
  return {
    name: settings.name,
    description: settings.description,
    defaultNodes: 5,

    createCore(init) {
      const config = simTotemConfig(init.id, init.members, settings.totem);
      return new TotemNode(config, init.durable ?? EMPTY_TOTEM_DURABLE, init.now, settings.faults);
    },

    emptyDurable: () => EMPTY_TOTEM_DURABLE,

    applyPersist: (durable, item) => applyTotemPersist(durable, item),

    createWorkload(ctx) {
      const config = simTotemConfig(ctx.members[0]!, ctx.members, settings.totem);
      run = new TotemRun(ctx.members, tokenTimeoutMs(config) + consensusTimeoutMs(config) + 1000);
      return new PublishWorkload(ctx, run);
    },

    createMonitor(view) {
      assert(run !== undefined, 'the workload is made before the monitor');
      const monitor = new TotemMonitor(view, run);
      run = undefined;
      return monitor;
    },
  };
}

export const totemSim = totemSimProtocol({
  name: 'totem',
  description:
    'Totem single-ring ordering: agreed and safe delivery, membership with extended virtual synchrony, under publishing clients',
});
