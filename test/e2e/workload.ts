import { performance } from 'node:perf_hooks';
import type { CheckResult } from '../../src/check/check.ts';
import { checkHistory } from '../../src/check/check.ts';
import type { HistoryEvent, Json } from '../../src/check/history.ts';
import { QuorateClient } from '../../src/client/client.ts';
import { QuorateError, UnknownOutcomeError } from '../../src/client/errors.ts';

/**
 * Concurrent clients against a real cluster, recording a history for the linearizability
 * checker: puts of unique values and linearizable gets over a few keys. A write that ends
 * with an unknown outcome is recorded as `info` and its process retires (the history rule);
 * a fresh process with a fresh session takes its place.
 */
export interface WorkloadOptions {
  readonly endpoints: readonly string[];
  readonly workers: number;
  readonly keys: number;
  /** Each worker stops after this many operations or when `stop()` is called. */
  readonly opsPerWorkerMax: number;
}

export class Workload {
  readonly events: HistoryEvent[] = [];
  /** Values whose put was acknowledged, by key, in acknowledgement order. */
  readonly acknowledged = new Map<string, string[]>();
  private stopped = false;
  private nextProcess = 0;
  private readonly started = performance.now();
  private running: Promise<void> | undefined;

  constructor(private readonly options: WorkloadOptions) {}

  start(): void {
    this.running = Promise.all(
      Array.from({ length: this.options.workers }, (_, w) => this.worker(w)),
    ).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /**
   * One linearizable read of every key through each endpoint, after the workers stopped and
   * the cluster recovered: a lost acknowledged write would show up as an older value.
   */
  async finalReads(endpoints: readonly string[]): Promise<void> {
    for (const endpoint of endpoints) {
      const process = this.nextProcess++;
      const client = new QuorateClient({ endpoints: [endpoint], timeoutMs: 5000, retries: 5 });
      for (let k = 0; k < this.options.keys; k++) {
        const key = `k${k}`;
        this.record(process, 'invoke', 'get', key, null);
        const got = await client.get(key);
        this.record(process, 'ok', 'get', key, got.entry?.value ?? null);
      }
    }
  }

  get okCount(): number {
    return this.events.filter((e) => e.type === 'ok').length;
  }

  check(budgetMs = 20_000): CheckResult {
    return checkHistory(this.events, { budgetMs, now: () => performance.now() });
  }

  private record(
    process: number,
    type: HistoryEvent['type'],
    f: 'get' | 'put',
    key: string,
    value: Json,
  ): void {
    this.events.push({
      process,
      type,
      f,
      key,
      value,
      time: Math.round(performance.now() - this.started),
    });
  }

  private client(): QuorateClient {
    return new QuorateClient({
      endpoints: this.options.endpoints,
      timeoutMs: 3000,
      retries: 8,
      backoffMs: 50,
      backoffMaxMs: 500,
    });
  }

  private async worker(w: number): Promise<void> {
    let process = this.nextProcess++;
    let client = this.client();
    for (let n = 0; n < this.options.opsPerWorkerMax && !this.stopped; n++) {
      const key = `k${(w + n) % this.options.keys}`;
      if (n % 3 === 2) {
        this.record(process, 'invoke', 'get', key, null);
        try {
          const got = await client.get(key);
          this.record(process, 'ok', 'get', key, got.entry?.value ?? null);
        } catch (err) {
          if (!(err instanceof QuorateError)) throw err;
          this.record(process, 'fail', 'get', key, null);
        }
        continue;
      }
      const value = `w${w}-${n}`;
      this.record(process, 'invoke', 'put', key, value);
      try {
        await client.put(key, value);
        this.record(process, 'ok', 'put', key, value);
        this.acknowledged.set(key, [...(this.acknowledged.get(key) ?? []), value]);
      } catch (err) {
        if (err instanceof UnknownOutcomeError || !(err instanceof QuorateError)) {
          this.record(process, 'info', 'put', key, value);
          process = this.nextProcess++;
          client = this.client();
        } else {
          this.record(process, 'fail', 'put', key, value);
        }
      }
    }
  }
}
