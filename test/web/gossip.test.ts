import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findChromium, NO_CHROMIUM_MESSAGE } from './chromium.ts';
import { slide, usePlaygroundPage } from './playground-page.ts';

const chromiumPath = findChromium();
if (chromiumPath === undefined) console.warn(NO_CHROMIUM_MESSAGE);

describe.skipIf(chromiumPath === undefined)('Gossip playground in Chromium', () => {
  const pg = usePlaygroundPage(chromiumPath!, { width: 1280, height: 900 });

  it('an event reaches all 20 nodes, measured in rounds; a killed node is marked dead at all the others', async () => {
    await pg.page.goto(`${pg.url}#gossip`);
    await pg.page.waitForFunction(() => window.quorate.gossip !== undefined);
    await pg.page.locator('#gs-auto').uncheck();
    await slide(pg.page, 'gs-speed', '5');
    await slide(pg.page, 'gs-nodes', '20');
    // Converged: no node that some live node does not see alive.
    await pg.page.waitForFunction(
      () =>
        window.quorate.gossip!.pg.now > 2000 &&
        document.querySelectorAll('#gs-rows tr').length === 0,
    );

    await pg.page.locator('#gs-node').selectOption('4');
    await pg.page.locator('#gs-publish').click();
    await pg.page.waitForFunction(() => {
      const e = document.getElementById('gs-event')!;
      return e.dataset.key === '4.1' && e.dataset.reached === '20' && e.dataset.live === '20';
    });
    // Every core delivered it, as its own stream says, and the rounds were measured.
    const learned = await pg.page.evaluate(() =>
      window.quorate.gossip!.pg.members.map((id) => {
        const core = window.quorate.gossip!.pg.core(id) as unknown as {
          learned: Map<string, number>;
        };
        return core.learned.has('4.1');
      }),
    );
    expect(learned).toEqual(Array(20).fill(true));
    await pg.page.waitForFunction(() => window.quorate.gossip!.measured.length === 1);
    const [point] = await pg.page.evaluate(() => window.quorate.gossip!.measured);
    console.log(
      `gossip playground: event 4.1 reached 20 nodes in ${point!.rounds} rounds of relays`,
    );
    expect(point!.n).toBe(20);
    // The longest relay chain from the origin: an epidemic (nodes relayed it, the origin did
    // not tell everyone itself), inside push theory's log₂N + ln N ≈ 7.3 at N = 20.
    expect(point!.rounds).toBeGreaterThanOrEqual(2);
    expect(point!.rounds).toBeLessThan(7.3);
    await pg.page.screenshot({ path: join(pg.shots, 'gossip-1-event.png') });

    await pg.page.locator('#gs-node').selectOption('7');
    await pg.page.locator('#gs-kill').click();
    await pg.page.locator('#gs-node').selectOption('1');
    await pg.page.locator('#gs-node').dispatchEvent('change');
    // The rendered row for n7: dead at every one of the 19 live nodes.
    await pg.page.waitForFunction(
      () => {
        const row = document.querySelector('#gs-rows tr[data-node="7"]') as HTMLElement | null;
        return (
          row?.dataset.up === 'false' && row.dataset.dead === '19' && row.dataset.observers === '19'
        );
      },
      undefined,
      { timeout: 20_000 },
    );
    const rows = await pg.page.$$eval('#gs-rows tr', (trs) =>
      trs.map((tr) => (tr as HTMLElement).dataset.node),
    );
    expect(rows).toEqual(['7']);
    expect(await pg.page.locator('#gs-check').getAttribute('data-ok')).toBe('true');
    expect(await pg.page.locator('#gs-check').textContent()).toContain('wrong dead verdicts: 0');
    await pg.page.screenshot({ path: join(pg.shots, 'gossip-2-dead.png') });
  });

  it('runs 200 nodes from the slider', async () => {
    await slide(pg.page, 'gs-nodes', '200');
    await pg.page.waitForFunction(() => window.quorate.gossip!.pg.members.length === 200);
    await pg.page.locator('#gs-publish').click();
    await pg.page.waitForFunction(
      () => {
        const e = document.getElementById('gs-event')!;
        return e.dataset.live === '200' && e.dataset.reached === '200';
      },
      undefined,
      { timeout: 25_000 },
    );
    // What a frame costs at 200 nodes (simulation at 32x, drawing and panels), for the report.
    const work = await pg.page.evaluate(async () => {
      const view = window.quorate.gossip!;
      const times: number[] = [];
      const original = view.frame.bind(view);
      view.frame = (t: number) => {
        const start = performance.now();
        original(t);
        times.push(performance.now() - start);
      };
      await new Promise((r) => setTimeout(r, 1500));
      view.frame = original;
      times.sort((a, b) => a - b);
      return {
        frames: times.length,
        p50: times[times.length >> 1] ?? 0,
        p99: times[Math.floor(times.length * 0.99)] ?? 0,
      };
    });
    console.log(
      `gossip playground at 200 nodes, 32x: ${work.frames} frames in 1.5 s, frame work p50 ${work.p50.toFixed(1)} ms, p99 ${work.p99.toFixed(1)} ms`,
    );
    expect(work.frames).toBeGreaterThan(0);
    await pg.page.screenshot({ path: join(pg.shots, 'gossip-3-200.png') });
  });

  it('logs no console errors', () => {
    expect(pg.errors).toEqual([]);
  });
});
