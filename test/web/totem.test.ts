import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { findChromium, NO_CHROMIUM_MESSAGE } from './chromium.ts';
import { usePlaygroundPage } from './playground-page.ts';

const chromiumPath = findChromium();
if (chromiumPath === undefined) console.warn(NO_CHROMIUM_MESSAGE);

/** One row of the rendered node table: what the page shows, not what the cores hold. */
interface Row {
  node: number;
  state: string;
  badge: string;
  members: string;
  delivered: number;
}

function rows(page: Page): Promise<Row[]> {
  return page.$$eval('#tm-rows tr', (trs) =>
    trs.map((tr) => {
      const cells = Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? '');
      return {
        node: Number(tr.getAttribute('data-node')),
        state: tr.getAttribute('data-state') ?? '',
        badge: tr.querySelector('.badge')?.textContent ?? '',
        members: cells[3] ?? '',
        delivered: Number(cells[5]),
      };
    }),
  );
}

/** Waits until the rendered table shows every listed node Operational with these members. */
async function waitForRing(page: Page, nodes: readonly number[], members: string): Promise<void> {
  await page.waitForFunction(
    ({ nodes, members }) => {
      const trs = Array.from(document.querySelectorAll('#tm-rows tr'));
      return nodes.every((id) => {
        const tr = trs.find((t) => t.getAttribute('data-node') === String(id));
        const cells = tr === undefined ? [] : Array.from(tr.querySelectorAll('td'));
        return (
          tr?.querySelector('.badge')?.textContent === 'Operational' &&
          cells[3]?.textContent === members
        );
      });
    },
    { nodes, members },
    { timeout: 20_000 },
  );
}

/** Each node's delivered messages (sender.boot.n) since its latest regular configuration. */
function sinceLastRegular(page: Page, nodes: readonly number[]): Promise<string[][]> {
  return page.evaluate((nodes) => {
    const view = window.quorate.totem!;
    return view
      .looks()
      .filter((n) => nodes.includes(n.id))
      .map((n) => {
        let from = 0;
        n.delivered.forEach((e, i) => {
          if (e.kind === 'config' && e.config === 'regular') from = i + 1;
        });
        return n.delivered
          .slice(from)
          .flatMap((e) => (e.kind === 'message' ? [`${e.sender}.${e.boot}.${e.n}`] : []));
      });
  }, nodes);
}

/** Any two streams are prefixes of one another, and each sender's messages come in order. */
function expectOneOrder(streams: readonly string[][]): void {
  const longest = streams.reduce((a, b) => (b.length > a.length ? b : a), []);
  for (const s of streams) expect(s).toEqual(longest.slice(0, s.length));
  for (const s of streams) {
    const last = new Map<string, number>();
    for (const m of s) {
      const [node, boot, n] = m.split('.');
      const key = `${node}.${boot}`;
      expect(Number(n)).toBeGreaterThan(last.get(key) ?? 0);
      last.set(key, Number(n));
    }
  }
}

describe.skipIf(chromiumPath === undefined)('Totem playground in Chromium', () => {
  const pg = usePlaygroundPage(chromiumPath!, { width: 1280, height: 900 });

  async function open(): Promise<void> {
    await pg.page.goto(`${pg.url}#totem`);
    await pg.page.waitForFunction(() => window.quorate.totem !== undefined);
    // A fresh ring of five from the same seed (the page may hold the previous test's run).
    await pg.page.locator('#tm-reset').click();
    await pg.page.locator('#tm-speed').fill('4');
    await pg.page.locator('#tm-speed').dispatchEvent('input');
    await waitForRing(pg.page, [1, 2, 3, 4, 5], '{1,2,3,4,5}');
  }

  it('killing 1 of 5 forms a new ring of the other four, announced transitional then regular', async () => {
    await open();
    await pg.page.screenshot({ path: join(pg.shots, 'totem-1-ring.png') });
    await pg.page.locator('#tm-node').selectOption('3');
    await pg.page.locator('#tm-kill').click();
    await waitForRing(pg.page, [1, 2, 4, 5], '{1,2,4,5}');
    const after = await rows(pg.page);
    expect(after.find((r) => r.node === 3)).toMatchObject({ state: 'down', members: '' });
    for (const r of after.filter((r) => r.node !== 3)) {
      expect(r.badge).toBe('Operational');
      expect(r.members).toBe('{1,2,4,5}');
    }
    const banners = await pg.page.$$eval('#tm-banners .banner', (bs) =>
      bs.map((b) => `${b.getAttribute('data-kind')} ${b.getAttribute('data-members')}`),
    );
    expect(banners).toContain('transitional 1,2,4,5');
    expect(banners).toContain('regular 1,2,4,5');
    // The four keep delivering in the new ring, all in one order.
    const before = Math.min(...after.filter((r) => r.node !== 3).map((r) => r.delivered));
    await pg.page.waitForFunction(
      (n) =>
        Array.from(document.querySelectorAll('#tm-rows tr'))
          .filter((tr) => tr.getAttribute('data-node') !== '3')
          .every((tr) => Number(tr.querySelectorAll('td')[5]?.textContent) >= n + 10),
      before,
    );
    expectOneOrder(await sinceLastRegular(pg.page, [1, 2, 4, 5]));
    await pg.page.screenshot({ path: join(pg.shots, 'totem-2-after-kill.png') });
  });

  it("a partition's two sides each form a ring and deliver in one order; merging makes one ring", async () => {
    await open();
    await pg.page.locator('#tm-senders').fill('5');
    await pg.page.locator('#tm-senders').dispatchEvent('input');
    await pg.page.locator('#tm-groups').fill('1,2 | 3,4,5');
    await pg.page.locator('#tm-partition').click();
    await waitForRing(pg.page, [1, 2], '{1,2}');
    await waitForRing(pg.page, [3, 4, 5], '{3,4,5}');
    await pg.page.waitForFunction(() =>
      window.quorate
        .totem!.looks()
        .every(
          (n) => n.delivered.length - n.delivered.findLastIndex((e) => e.kind === 'config') > 15,
        ),
    );
    const left = await sinceLastRegular(pg.page, [1, 2]);
    const right = await sinceLastRegular(pg.page, [3, 4, 5]);
    expectOneOrder(left);
    expectOneOrder(right);
    // Each side orders only its own senders' messages.
    for (const m of left.flat()) expect(['1', '2']).toContain(m.split('.')[0]);
    for (const m of right.flat()) expect(['3', '4', '5']).toContain(m.split('.')[0]);
    await pg.page.screenshot({ path: join(pg.shots, 'totem-3-partition.png') });

    await pg.page.locator('#tm-merge').click();
    await waitForRing(pg.page, [1, 2, 3, 4, 5], '{1,2,3,4,5}');
    const merged = await rows(pg.page);
    expect(new Set(merged.map((r) => r.badge))).toEqual(new Set(['Operational']));
    await pg.page.screenshot({ path: join(pg.shots, 'totem-4-merged.png') });
  });

  it('logs no console errors', () => {
    expect(pg.errors).toEqual([]);
  });
});
