/** Small statistics shared by the load generator and the runner. */

/** The p-th percentile (nearest rank) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export interface FailoverWindow {
  /** From the kill to the successful write that ends the longest gap after it. */
  readonly windowMs: number;
  readonly longestGapMs: number;
  /** Where the longest gap starts, relative to the kill (0 = at the kill). */
  readonly gapFromMs: number;
  readonly firstOkMs: number;
}

/**
 * The write-unavailability window after a kill at `killAt`: the longest gap between
 * successful writes after the kill (the first gap starts at the kill itself), measured to
 * the success that ends it. Undefined when no write succeeded after the kill.
 */
export function failoverWindow(
  completions: readonly number[],
  killAt: number,
): FailoverWindow | undefined {
  const after = completions.filter((t) => t >= killAt).sort((a, b) => a - b);
  if (after.length === 0) return undefined;
  let prev = killAt;
  let best = { len: -1, start: killAt, end: killAt };
  for (const t of after) {
    if (t - prev > best.len) best = { len: t - prev, start: prev, end: t };
    prev = t;
  }
  const round = (x: number) => Math.round(x);
  return {
    windowMs: round(best.end - killAt),
    longestGapMs: round(best.len),
    gapFromMs: round(best.start - killAt),
    firstOkMs: round((after[0] as number) - killAt),
  };
}
