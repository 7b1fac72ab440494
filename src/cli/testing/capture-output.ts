import { afterEach, beforeEach, vi } from 'vitest';

/**
 * Captures what the CLI writes to stdout in each test of the calling file (stderr is
 * silenced), for tests that run `main([...])` in-process and read its summary line.
 */
export function captureOutput(): { readonly text: () => string } {
  let out = '';
  beforeEach(() => {
    out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  return { text: () => out };
}
