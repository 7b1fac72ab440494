import { existsSync, mkdirSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/**
 * Finds a Chromium for the browser tests: CHROMIUM_PATH, Debian's /usr/bin/chromium, or the
 * one Playwright installed. A browser cannot be downloaded here, so where none is found the
 * tests are skipped, loudly, naming the fix.
 */
export function findChromium(): string | undefined {
  const candidates = [
    process.env.CHROMIUM_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    safeExecutablePath(),
  ];
  return candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
}

function safeExecutablePath(): string | undefined {
  try {
    return chromium.executablePath();
  } catch {
    return undefined;
  }
}

export const NO_CHROMIUM_MESSAGE = [
  '',
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
  '!! BROWSER TESTS SKIPPED: no Chromium found.                                      !!',
  '!! Fix: apt-get install -y chromium   (Debian/Ubuntu; .ci/run does this)          !!',
  '!!   or CHROMIUM_PATH=/path/to/chrome npm test                                   !!',
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
  '',
].join('\n');

/**
 * Flags for a closed network: without them Chromium keeps trying to reach Google services.
 * Playwright gives every launch a fresh temporary profile (its own --user-data-dir).
 */
const quietFlags = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: quietFlags });
}

export const screenshotDir = new URL('../../test-results/web/', import.meta.url).pathname;

export function ensureScreenshotDir(): string {
  mkdirSync(screenshotDir, { recursive: true });
  return screenshotDir;
}
