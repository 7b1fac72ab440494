/** One sample: its labels as exposition text (`{kind="probe"}`, or '' for none) and its value. */
export type PromSample = readonly [labels: string, value: number];

/**
 * A Prometheus text exposition written by hand, for services whose counters live in plain
 * objects read at scrape time (the gossip agent and its store) rather than in prom-client's
 * registry (metrics.ts). Every metric name gets `prefix`.
 */
export class PromText {
  private readonly lines: string[] = [];

  constructor(private readonly prefix: string) {}

  metric(
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    samples: readonly PromSample[],
  ): void {
    const full = `${this.prefix}${name}`;
    this.lines.push(`# HELP ${full} ${help}`, `# TYPE ${full} ${type}`);
    for (const [labels, value] of samples) this.lines.push(`${full}${labels} ${value}`);
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}
