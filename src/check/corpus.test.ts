import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkHistory } from './check.ts';
import type { HistoryEvent, Json } from './history.ts';
import { parseEdn, parseJepsen } from './parse.ts';

/**
 * Known answers on real histories (testdata/ at the repository root):
 * Jepsen's etcd register runs and porcupine's key-value histories. MANIFEST.json in each
 * folder gives the answer upstream checkers agree on; NOTICE.md describes the format.
 */
const testdata = new URL('../../testdata/', import.meta.url);

type Expected = boolean | 'unknown';

function manifest(folder: string): Map<string, Expected> {
  const text = readFileSync(new URL(`${folder}/MANIFEST.json`, testdata), 'utf8');
  const entries = Object.entries(JSON.parse(text) as Record<string, { linearizable: Expected }>);
  return new Map(entries.map(([file, { linearizable }]) => [file, linearizable]));
}

function verdictFor(events: HistoryEvent[], initial: Json, failedCasObserved = false): Expected {
  // A generous budget: the corpus takes about a second, but a slow CI machine must not flake.
  const now = () => performance.now();
  const result = checkHistory(events, { initial, failedCasObserved, budgetMs: 60_000, now });
  if (result.verdict === 'unknown') return 'unknown';
  return result.verdict === 'linearizable';
}

describe('Jepsen etcd histories (porcupine test_data/jepsen)', () => {
  it('the test data is in the repository', () => {
    expect(existsSync(new URL('jepsen-etcd/MANIFEST.json', testdata))).toBe(true);
  });

  // Upstream reads a failed cas as a compare mismatch; our default reads it as "did not
  // happen", which constrains less. Both readings give every MANIFEST answer.
  it.each([false, true])(
    'every file has the MANIFEST answer (failed cas observed: %s)',
    (observed) => {
      const expected = manifest('jepsen-etcd');
      const files = readdirSync(new URL('jepsen-etcd/', testdata)).filter((f) =>
        f.endsWith('.log'),
      );
      expect(files.sort()).toEqual([...expected.keys()].sort());
      expect(files).toHaveLength(103);
      const mismatches: string[] = [];
      for (const file of files) {
        const events = parseJepsen(readFileSync(new URL(`jepsen-etcd/${file}`, testdata), 'utf8'));
        const got = verdictFor(events, null, observed);
        // The one "unknown" entry is the empty history of a run whose cluster never started.
        const want = expected.get(file) === 'unknown' ? events.length === 0 : expected.get(file);
        if (got !== want) mismatches.push(`${file}: expected ${want}, got ${got}`);
      }
      expect(mismatches).toEqual([]);
    },
  );
});

describe('porcupine key-value histories (get/put/append, keys start as "")', () => {
  const expected = manifest('kv');
  it.each([...expected.entries()])('%s is linearizable: %s', (file, want) => {
    const events = parseEdn(readFileSync(new URL(`kv/${file}`, testdata), 'utf8'));
    expect(verdictFor(events, '')).toBe(want);
  });

  it('the bad histories are caught on a key, with an explanation naming a read', () => {
    const events = parseEdn(readFileSync(new URL('kv/c10-bad.txt', testdata), 'utf8'));
    const result = checkHistory(events, { initial: '' });
    expect(result.verdict).toBe('not-linearizable');
    if (result.verdict !== 'not-linearizable') return;
    expect(result.key).toMatch(/^\d$/);
    expect(result.explanation).toMatch(/get read/);
  });
});
