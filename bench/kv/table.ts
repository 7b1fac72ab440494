/**
 * The side-by-side table of bench:kv: ours (Raft), the same service on Multi-Paxos, etcd,
 * ours/etcd and whether the target holds.
 */
import type { SystemName } from './adapters.ts';
import type { GrpcResults } from './grpc.ts';
import type { SystemResults } from './run.ts';

export interface Report {
  readonly date: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly node: string };
  readonly settings: object;
  readonly points: readonly string[];
  readonly results: Partial<Record<SystemName, SystemResults>>;
  /** The gRPC column (grpc.ts), when it ran. */
  readonly grpcPoints?: readonly string[];
  readonly grpc?: GrpcResults;
}

interface Row {
  readonly metric: string;
  readonly ours: number | undefined;
  /** The same service on Multi-Paxos, for context (the targets are Raft's). */
  readonly multipaxos: number | undefined;
  readonly etcd: number | undefined;
  /** Our Raft service as the `--baseline` checkout builds it. */
  readonly baseline: number | undefined;
  /** Which way is better, for the target column. */
  readonly target: 'ratio>=1' | 'ratio<=1' | 'ratio<=0.5';
}

function rows(report: Report): Row[] {
  const ours = report.results.quorate;
  const etcd = report.results.etcd;
  const mp = report.results.multipaxos;
  const base = report.results.baseline;
  const out: Row[] = [];
  for (const point of report.points) {
    const o = ours?.points[point];
    const m = mp?.points[point];
    const e = etcd?.points[point];
    const b = base?.points[point];
    const label = point.replace('get', 'lin-read').replace('put', 'write');
    out.push({
      metric: `${label} ops/s`,
      ours: o?.opsPerSec,
      multipaxos: m?.opsPerSec,
      etcd: e?.opsPerSec,
      baseline: b?.opsPerSec,
      target: 'ratio>=1',
    });
    out.push({
      metric: `${label} p50 ms`,
      ours: o?.p50Ms,
      multipaxos: m?.p50Ms,
      etcd: e?.p50Ms,
      baseline: b?.p50Ms,
      target: 'ratio<=1',
    });
    out.push({
      metric: `${label} p99 ms`,
      ours: o?.p99Ms,
      multipaxos: m?.p99Ms,
      etcd: e?.p99Ms,
      baseline: b?.p99Ms,
      target: 'ratio<=1',
    });
  }
  out.push({
    metric: 'failover window ms (median)',
    ours: ours?.medianWindowMs,
    multipaxos: mp?.medianWindowMs,
    etcd: etcd?.medianWindowMs,
    baseline: base?.medianWindowMs,
    target: 'ratio<=0.5',
  });
  return out;
}

function verdict(row: Row, ratio: number): string {
  if (!Number.isFinite(ratio)) return '';
  // p50 is reported for context; the targets are throughput, p99 and the failover window.
  if (row.metric.includes('p50')) return '';
  const met =
    row.target === 'ratio>=1' ? ratio >= 1 : row.target === 'ratio<=1' ? ratio <= 1 : ratio <= 0.5;
  return `${met ? 'met' : 'MISSED'} (${row.target})`;
}

export function renderTable(report: Report): string {
  const withBaseline = report.results.baseline !== undefined;
  const header = ['metric', 'quorate', 'multipaxos', 'etcd', 'quorate/etcd', 'target'];
  if (withBaseline) header.push('baseline', 'quorate/baseline');
  const body = rows(report).map((row) => {
    const ratio = ratioOf(row.ours, row.etcd);
    const cells = [
      row.metric,
      String(row.ours ?? '-'),
      String(row.multipaxos ?? '-'),
      String(row.etcd ?? '-'),
      Number.isFinite(ratio) ? ratio.toFixed(2) : '-',
      verdict(row, ratio),
    ];
    if (withBaseline) {
      const againstBaseline = ratioOf(row.ours, row.baseline);
      cells.push(
        String(row.baseline ?? '-'),
        Number.isFinite(againstBaseline) ? againstBaseline.toFixed(2) : '-',
      );
    }
    return cells;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...body.map(line)].join('\n');
}

function ratioOf(ours: number | undefined, other: number | undefined): number {
  return ours !== undefined && other !== undefined && other > 0 ? ours / other : Number.NaN;
}
