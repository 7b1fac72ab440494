import { describe, expect, it } from 'vitest';
import { gossipPlayground, relayRounds, theoryRounds, WatchedGossip } from './gossip.ts';

describe('Playground with gossip', () => {
  it('an event reaches every node, and a killed node is declared dead by every live one', () => {
    const { pg, watch } = gossipPlayground({
      seed: 2,
      nodes: 30,
      fanout: 3,
      packetBytesMax: 1400,
      lossRate: 0,
    });
    pg.runUntil(3000);
    pg.clientRequest('hello', 4);
    pg.runUntil(5000);
    const cores = pg.members.flatMap((id) => {
      const c = pg.core(id);
      return c instanceof WatchedGossip ? [c] : [];
    });
    expect(cores).toHaveLength(30);
    for (const c of cores) expect(c.learned.has('4.1')).toBe(true);
    // Relayed through chains, not told by the origin alone; fewer rounds than push theory.
    const rounds = relayRounds(cores, '4.1')!;
    expect(rounds).toBeGreaterThanOrEqual(2);
    expect(rounds).toBeLessThan(theoryRounds('push', 30));
    pg.crash(9);
    watch.monitor?.onCrash(9);
    pg.runUntil(25_000);
    for (const c of cores.filter((c) => c.id !== 9)) expect(c.node.member(9)?.status).toBe('dead');
    expect(watch.violation).toBeUndefined();
    expect(watch.monitor?.falseDead).toBe(0);
  });
});
