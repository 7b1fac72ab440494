import { describe, expect, it } from 'vitest';
import type { CoreTypes } from '../../kernel/core.ts';
import { Playground } from '../../sim/interactive.ts';
import { fastPaxosPage } from './fast-paxos-page.ts';
import { multiPaxosPage } from './multi-paxos-page.ts';
import type { ProtocolPage } from './protocol-page.ts';

/**
 * Walks a tour as the page does (a fresh playground where a stop asks for one), running
 * simulated time until each stop's condition holds; returns the captions and the end state.
 */
function walk(page: ProtocolPage, seed: number) {
  const make = () => new Playground<CoreTypes, unknown>(page.protocol, { seed, nodes: 5 });
  let pg = make();
  const captions: string[] = [];
  for (const stop of page.tour) {
    if (stop.fresh === true) pg = make();
    stop.enter?.(pg);
    const deadline = pg.now + 5000;
    while (!stop.ready(pg) && pg.now < deadline) pg.runUntil(pg.now + 5);
    expect(stop.ready(pg), `stop ${captions.length + 1} never became ready`).toBe(true);
    captions.push(stop.caption(pg));
  }
  return { pg, captions };
}

describe('Paxos family tours', () => {
  for (const seed of [1, 2, 3]) {
    it(`Fast Paxos: fast round, collision, recovery (seed ${seed})`, () => {
      const { pg, captions } = walk(fastPaxosPage, seed);
      expect(captions.join(' ')).toMatch(/fast quorum.*Collision.*Recovery/s);
      expect(captions[1]).toContain('4 of 5');
      const values = new Set(pg.nodes().map((n) => n.view.log[0]?.label));
      expect(values.size).toBe(1);
      expect(pg.nodes().every((n) => n.view.role === 'learned')).toBe(true);
      expect(pg.captions().some((c) => c.text.includes('sees a collision'))).toBe(true);
    });

    it(`Multi-Paxos: leader, phase 2 per command, a new leader finishes a half-done instance and fills a hole with a no-op (seed ${seed})`, () => {
      const { pg, captions } = walk(multiPaxosPage, seed);
      expect(new Set(captions).size).toBe(captions.length);
      const live = pg.nodes().filter((n) => n.up);
      expect(live).toHaveLength(3);
      for (const n of live) {
        const labels = n.view.log.filter((c) => c.index <= n.view.commit).map((c) => c.label);
        // #3 was the hole left by the cut-off leader: a no-op now, and z=3 nowhere.
        expect(labels).toEqual(['x=1', 'y=2', '·', 'w=4']);
      }
      // The feed keeps the newest captions: the last leader re-proposed the hole and w=4.
      expect(pg.captions().some((c) => c.text.includes('re-proposes 2 half-done'))).toBe(true);
    });
  }
});
