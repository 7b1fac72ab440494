import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { type Dashboard, startDashboard } from '../../src/cli/dashboard.ts';
import { ensureWebBuild } from '../../src/web/build.ts';
import { ensureScreenshotDir, launchChromium } from './chromium.ts';

/** What a playground's browser test drives: one page of a dashboard served without a cluster. */
export interface PlaygroundPage {
  readonly page: Page;
  /** The dashboard's base URL; a playground is `${url}#name`. */
  readonly url: string;
  /** Console errors and uncaught exceptions the page has logged so far. */
  readonly errors: readonly string[];
  /** Where screenshots go. */
  readonly shots: string;
}

/**
 * Registers, in the calling `describe` block, a dashboard with no cluster on a free port,
 * Chromium, and one page that records its console errors; closes them after the block. The
 * returned object's `page` and `url` are ready once the block's first test runs.
 */
export function usePlaygroundPage(
  chromiumPath: string,
  viewport: { readonly width: number; readonly height: number },
): PlaygroundPage {
  let browser: Browser | undefined;
  let dashboard: Dashboard | undefined;
  let page: Page | undefined;
  const errors: string[] = [];
  const shots = ensureScreenshotDir();

  beforeAll(async () => {
    await ensureWebBuild();
    dashboard = await startDashboard({ host: '127.0.0.1', port: 0, cluster: undefined });
    browser = await launchChromium(chromiumPath);
    page = await browser.newPage({ viewport });
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
  });

  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the playground's ${what} is not set up yet`);
    return value;
  };
  return {
    get page() {
      return ready(page, 'page');
    },
    get url() {
      return ready(dashboard, 'dashboard').url;
    },
    errors,
    shots,
  };
}

/** Sets a range input as a visitor drags it: the value, then the input and change events. */
export async function slide(page: Page, id: string, value: string): Promise<void> {
  await page.locator(`#${id}`).fill(value);
  await page.locator(`#${id}`).dispatchEvent('input');
  await page.locator(`#${id}`).dispatchEvent('change');
}
