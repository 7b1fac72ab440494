import { assert } from '../kernel/index.ts';

/** Limits on one check. The clock is passed in: src/check is pure. */
export interface BudgetLimits {
  /** Wall-clock budget in ms, measured with `now`; past it the answer is 'unknown'. */
  readonly budgetMs?: number;
  /** A monotonic clock in ms (the CLI passes `performance.now`). Required with `budgetMs`. */
  readonly now?: () => number;
  /** Search steps allowed over all keys: a deterministic budget, for tests and simulations. */
  readonly stepsMax?: number;
}

/** Time and step budget shared by the searches of every key of one history. */
export class Budget {
  private steps = 0;
  private readonly startMs: number;
  private readonly limits: BudgetLimits;

  constructor(limits: BudgetLimits) {
    const { budgetMs, now, stepsMax } = limits;
    assert(budgetMs === undefined || budgetMs >= 0, 'budgetMs is not negative');
    assert(budgetMs === undefined || now !== undefined, 'a time budget needs a clock (now)');
    assert(stepsMax === undefined || stepsMax >= 0, 'stepsMax is not negative');
    this.limits = limits;
    this.startMs = now === undefined ? 0 : now();
  }

  /** Records `steps` more search steps; returns why the budget is spent, or undefined. */
  charge(steps: number): string | undefined {
    assert(steps >= 0, 'steps are counted up');
    this.steps += steps;
    const { budgetMs, now, stepsMax } = this.limits;
    if (stepsMax !== undefined && this.steps > stepsMax) {
      return `search step budget of ${stepsMax} exhausted`;
    }
    if (budgetMs !== undefined && now !== undefined && now() - this.startMs > budgetMs) {
      return `time budget of ${budgetMs} ms exhausted after ${this.steps} search steps`;
    }
    return undefined;
  }
}
