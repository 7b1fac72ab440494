import { describe, expect, it } from 'vitest';
import type { HistoryEvent } from '../../check/history.ts';
import { primaryBackup, primaryBackupKv } from '../reference/plugin.ts';
import type { PbTypes } from '../reference/primary-backup.ts';
import { runSimulation } from '../run.ts';
import { KvWorkload } from './kv.ts';

/** The fixture without its linearizability check: these tests are about the history itself. */
const unchecked = {
  ...primaryBackup,
  createWorkload: (ctx: Parameters<typeof primaryBackup.createWorkload>[0]) =>
    new KvWorkload<PbTypes>(ctx, primaryBackupKv, () => ({ verdict: 'pass', summary: '' })),
};

/** Checks the history format's rules (src/check/history.ts) and returns per-type counts. */
function audit(history: readonly HistoryEvent[]): Record<string, number> {
  const open = new Map<number, HistoryEvent>();
  const retired = new Set<number>();
  const counts: Record<string, number> = { invoke: 0, ok: 0, fail: 0, info: 0 };
  let lastTime = 0;
  for (const e of history) {
    counts[e.type] = (counts[e.type] ?? 0) + 1;
    expect(e.time).toBeGreaterThanOrEqual(lastTime);
    lastTime = e.time;
    if (e.type === 'invoke') {
      expect(retired.has(e.process), `process ${e.process} invoked after an info`).toBe(false);
      expect(open.has(e.process), `process ${e.process} has two ops in flight`).toBe(false);
      open.set(e.process, e);
      continue;
    }
    const inv = open.get(e.process);
    expect(inv, `completion without invoke for ${e.process}`).toBeDefined();
    expect([inv?.f, inv?.key]).toEqual([e.f, e.key]);
    if (e.f === 'put' || e.f === 'cas') expect(e.value).toEqual(inv?.value);
    open.delete(e.process);
    if (e.type === 'info') retired.add(e.process);
  }
  expect(open.size).toBe(0);
  return counts;
}

describe('KvWorkload', () => {
  it('records a well-formed history: retries, definite failures, and info ops that retire', () => {
    let infos = 0;
    let fails = 0;
    for (let seed = 1; seed <= 4; seed++) {
      const r = runSimulation(unchecked, {
        seed,
        faults: ['crash', 'loss', 'pause'],
        intensity: 0.8,
        clientLoss: 0.05,
        ops: 150,
      });
      const counts = audit(r.history);
      expect(counts.invoke).toBe(150 + 5);
      infos += counts.info ?? 0;
      fails += counts.fail ?? 0;
    }
    expect(infos).toBeGreaterThan(0);
    expect(fails).toBeGreaterThan(0);
  });

  it('ends with a final read per client that must succeed once healed', () => {
    const r = runSimulation(primaryBackup, { seed: 5, faults: [], ops: 20, clients: 3 });
    expect(r.verdict).toBe('pass');
    const tail = r.history.slice(-6);
    expect(tail.filter((e) => e.type === 'ok' && e.f === 'get').length).toBeGreaterThanOrEqual(3);
    expect(r.stats.healedAtMs).toBeGreaterThan(0);
  });

  it('fails the liveness check when clients still cannot get through after healing', () => {
    // Client-link loss is a setting, not a fault, so healing does not lift it.
    const r = runSimulation(primaryBackup, {
      seed: 1,
      ops: 5,
      livenessMs: 2_000,
      clientLoss: 0.999,
    });
    expect(r.verdict).toBe('violation');
    expect(r.message).toMatch(
      /^liveness: not done 2000ms after healing: \d client\(s\) unfinished/,
    );
  });
});
