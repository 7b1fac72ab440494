import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findChromium, NO_CHROMIUM_MESSAGE } from './chromium.ts';
import { slide, usePlaygroundPage } from './playground-page.ts';

const chromiumPath = findChromium();
if (chromiumPath === undefined) console.warn(NO_CHROMIUM_MESSAGE);

describe.skipIf(chromiumPath === undefined)('Anti-entropy playground in Chromium', () => {
  const pg = usePlaygroundPage(chromiumPath!, { width: 1280, height: 1100 });

  it('Merkle: the repair descends into the differing branches only, and the roots end equal', async () => {
    await pg.page.goto(`${pg.url}#antientropy`);
    await pg.page.waitForFunction(() => window.quorate.antientropy !== undefined);
    await slide(pg.page, 'ae-speed', '5');
    const synced = () =>
      pg.page.waitForFunction(() => {
        const s = document.getElementById('ae-merkle');
        return s?.dataset.same === 'true' && s.dataset.keys === '200,200';
      });
    await synced();
    await pg.page.locator('#ae-d').selectOption('5');
    await pg.page.locator('#ae-damage').click();
    // The rendered trees light a differing range the exchange compared, below the root.
    // Paused the moment it does, so the picture and the checks below see the same state.
    await pg.page.waitForFunction(() => {
      const view = window.quorate.antientropy!;
      const lit = view
        .treeCells()
        .slice(1)
        .some((row) => row.some((c) => c.differs && c.visited));
      if (lit) view.playing = false;
      return lit;
    });
    await pg.page.waitForTimeout(300);
    const lit = await pg.page.evaluate(() =>
      window.quorate.antientropy!.treeCells().map((row) => ({
        cells: row.length,
        differs: row.filter((c) => c.differs).length,
      })),
    );
    // Fewer ranges differ than are drawn at the first level: the descent is selective.
    expect(lit[1]!.differs).toBeLessThanOrEqual(5);
    expect(lit[1]!.differs).toBeLessThan(lit[1]!.cells);
    expect(await pg.page.locator('#ae-merkle').getAttribute('data-same')).toBe('false');
    // What the exchange compared so far: 8-bit ranges only under the differing 4-bit ones
    // (at most 5 of 16 per direction), never all 256 as a full comparison would.
    const compared = await pg.page.evaluate(() =>
      window.quorate
        .antientropy!.latestExchange()
        .filter((s) => s.type === 'hashes')
        .flatMap((s) => s.ranges),
    );
    const at8 = compared.filter((r) => r.startsWith('8:')).length;
    console.log(`anti-entropy playground: ${at8} 8-bit range summaries compared in the descent`);
    expect(at8).toBeLessThanOrEqual(2 * 5 * 16);
    await pg.page.screenshot({ path: join(pg.shots, 'antientropy-1-descent.png') });
    await pg.page.locator('#ae-play').click();
    await synced();
    const moved = await pg.page.evaluate(() => {
      const ex = window.quorate.antientropy!.latestExchange();
      return {
        entries: ex.filter((s) => s.type === 'values').reduce((n, s) => n + s.entries, 0),
        bytes: ex.reduce((n, s) => n + s.bytes, 0),
      };
    });
    console.log(
      `anti-entropy playground: latest exchange moved ${moved.entries} entries in ${moved.bytes} B`,
    );
    await pg.page.screenshot({ path: join(pg.shots, 'antientropy-2-repaired.png') });
  });

  it('Scuttlebutt: tables go stale under writes and all fresh once writes stop', async () => {
    await pg.page.evaluate(() => {
      window.quorate.antientropy!.playing = true;
    });
    await pg.page.waitForFunction(() =>
      window.quorate.antientropy!.samples.some((s) => s.max > 0 && s.stalePairs > 0),
    );
    await slide(pg.page, 'ae-rate', '0');
    // The table and the chart are drawn from different frames' samples: wait for both to be
    // fresh (a write sent just before the rate went to 0 can still be in flight for one).
    await pg.page.waitForFunction(() => {
      const cells = Array.from(document.querySelectorAll('#ae-table td[data-lag]'));
      const latest = window.quorate.antientropy!.samples.at(-1);
      return (
        cells.length === 25 &&
        cells.every((td) => td.getAttribute('data-lag') === '0') &&
        latest !== undefined &&
        latest.max === 0 &&
        latest.stalePairs === 0
      );
    });
    const last = await pg.page.evaluate(() => window.quorate.antientropy!.samples.at(-1));
    expect(last).toMatchObject({ max: 0, stalePairs: 0 });
    await pg.page.screenshot({ path: join(pg.shots, 'antientropy-3-fresh.png') });
  });

  it('logs no console errors', () => {
    expect(pg.errors).toEqual([]);
  });
});
