import { describe, expect, it } from 'vitest';
import { Playground } from '../../sim/interactive.ts';
import type { TotemDurable, TotemTypes } from '../../totem/types.ts';
import { type DeliveredEntry, TotemSenders, totemPlayground, WatchedTotem } from './totem.ts';

type Pg = Playground<TotemTypes, TotemDurable>;

function watched(pg: Pg, id: number): WatchedTotem {
  const core = pg.core(id);
  if (!(core instanceof WatchedTotem)) throw new Error(`n${id} is down`);
  return core;
}

function messages(entries: readonly DeliveredEntry[]): string[] {
  return entries.flatMap((e) => (e.kind === 'message' ? [`${e.sender}.${e.boot}.${e.n}`] : []));
}

function rings(pg: Pg, ids: readonly number[]): Set<string> {
  return new Set(
    ids.map(
      (id) => `${watched(pg, id).status().state}:${watched(pg, id).status().members.join(',')}`,
    ),
  );
}

describe('Playground with Totem', () => {
  it('forms one ring of five, delivers every publish in one order everywhere, and re-forms without a killed node', () => {
    const pg: Pg = new Playground(totemPlayground({ windowSize: 50 }), { seed: 4, nodes: 5 });
    const senders = new TotemSenders(pg);
    senders.runUntil(1500);
    expect(rings(pg, pg.members)).toEqual(new Set(['operational:1,2,3,4,5']));
    const streams = pg.members.map((id) => messages(watched(pg, id).delivered));
    expect(streams[0]!.length).toBeGreaterThan(20);
    const shortest = Math.min(...streams.map((s) => s.length));
    for (const s of streams) expect(s.slice(0, shortest)).toEqual(streams[0]!.slice(0, shortest));

    pg.crash(3);
    senders.runUntil(pg.now + 2000);
    const live = [1, 2, 4, 5];
    expect(rings(pg, live)).toEqual(new Set(['operational:1,2,4,5']));
    for (const id of live) {
      const configs = watched(pg, id).delivered.filter((e) => e.kind === 'config');
      expect(configs.slice(-2).map((c) => (c.kind === 'config' ? c.config : ''))).toEqual([
        'transitional',
        'regular',
      ]);
    }
  });

  it('a partition forms two rings that each deliver in one order, and healing merges them into one', () => {
    const pg: Pg = new Playground(totemPlayground({ windowSize: 20 }), { seed: 7, nodes: 5 });
    const senders = new TotemSenders(pg);
    senders.senders = 5;
    senders.runUntil(1000);
    pg.partition([
      [1, 2],
      [3, 4, 5],
    ]);
    senders.runUntil(pg.now + 2500);
    expect(rings(pg, [1, 2])).toEqual(new Set(['operational:1,2']));
    expect(rings(pg, [3, 4, 5])).toEqual(new Set(['operational:3,4,5']));
    pg.heal();
    senders.runUntil(pg.now + 3000);
    expect(rings(pg, pg.members)).toEqual(new Set(['operational:1,2,3,4,5']));
  });
});
