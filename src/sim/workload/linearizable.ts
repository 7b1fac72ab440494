import { checkHistory } from '../../check/index.ts';
import type { HistoryCheck } from './kv.ts';

/**
 * Search steps the checker may spend on one run's history. A step budget, not a time
 * budget, so a seed's verdict never depends on the machine it ran on.
 */
export const checkStepsMaxDefault = 5_000_000;

/** The key-value workload's end check: the history must be linearizable. */
export function linearizabilityCheck(stepsMax = checkStepsMaxDefault): HistoryCheck {
  return (events) => {
    const result = checkHistory(events, { stepsMax });
    switch (result.verdict) {
      case 'linearizable':
        return {
          verdict: 'pass',
          summary: `linearizable: ${result.ops} operations over ${result.keys} keys`,
        };
      case 'not-linearizable':
        return {
          verdict: 'violation',
          message: `not linearizable on key ${JSON.stringify(result.key)}: ${result.explanation}`,
        };
      case 'unknown':
        return { verdict: 'unknown', reason: `linearizability unknown: ${result.reason}` };
    }
  };
}
