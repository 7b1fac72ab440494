import type uPlot from 'uplot';
import type { StatusResponse } from '../../client/wire.ts';
import type { NodeId } from '../../kernel/ids.ts';
import { byId, el } from './dom.ts';
import { type CommitSample, commitRates } from './live-rates.ts';

/**
 * The live view of a real cluster, fed by the dashboard server's /api/cluster (see
 * src/cli/dashboard.ts, whose ClusterSnapshot this mirrors: the web layer may not import the
 * CLI layer, and the browser test checks both ends agree).
 */
interface NodeCounters {
  readonly kvRequests: number;
  readonly kvLatencySum: number;
  readonly kvLatencyCount: number;
  readonly commits: number;
}

interface NodeSnapshot {
  readonly id: NodeId;
  readonly clientUrl: string;
  readonly status: StatusResponse | null;
  readonly counters: NodeCounters | null;
  readonly error: string | null;
}

interface ClusterSnapshot {
  readonly at: number;
  readonly hasCluster: boolean;
  readonly nodes: readonly NodeSnapshot[];
}

const POLL_MS = 1000;
/** Chart points kept (one per poll): five minutes. */
const POINTS_MAX = 300;

interface Totals {
  readonly at: number;
  readonly requests: number;
  readonly latencySum: number;
  readonly latencyCount: number;
}

export class LiveView {
  private timer: ReturnType<typeof setInterval> | undefined;
  private last: Totals | undefined;
  private lastCommits: readonly CommitSample[] = [];
  /** Each node's commits/s over the last poll, shown in its row. */
  private nodeRates: ReadonlyMap<NodeId, number> = new Map();
  private readonly series: [number[], number[], number[]] = [[], [], []];
  private readonly latency: [number[], number[]] = [[], []];
  private throughputChart: uPlot | undefined;
  private latencyChart: uPlot | undefined;
  private polling = false;

  constructor() {
    byId('lv-put').addEventListener('click', () => void this.kv('PUT'));
    byId('lv-get').addEventListener('click', () => void this.kv('GET'));
  }

  start(): void {
    if (this.timer !== undefined) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const res = await fetch('/api/cluster');
      const snap = (await res.json()) as ClusterSnapshot;
      const samples = snap.nodes.map((n) => ({
        id: n.id,
        at: snap.at,
        commits: n.counters?.commits ?? null,
      }));
      const rates = commitRates(this.lastCommits, samples);
      this.lastCommits = samples;
      this.nodeRates = rates.perNode;
      this.render(snap);
      this.chart(snap, rates.cluster);
    } catch (err) {
      byId('lv-status').textContent = `dashboard unreachable: ${(err as Error).message}`;
    } finally {
      this.polling = false;
    }
  }

  private render(snap: ClusterSnapshot): void {
    if (!snap.hasCluster) {
      byId('lv-status').textContent =
        'No cluster is attached: start one with `quorate up`, which serves this page.';
      return;
    }
    const leader = snap.nodes.find((n) => n.status?.role === 'leader');
    byId('lv-status').textContent = leader
      ? `leader: n${leader.id} (term ${leader.status?.term})`
      : 'no leader';
    byId('lv-status').dataset.leader = String(leader?.id ?? 0);
    const progress = new Map((leader?.status?.progress ?? []).map((p) => [p.id, p]));
    const top = leader?.status?.commitIndex ?? 0;
    byId('lv-nodes').replaceChildren(...snap.nodes.map((n) => this.row(n, progress, top)));
  }

  private row(
    n: NodeSnapshot,
    progress: ReadonlyMap<NodeId, { match: number; state: string }>,
    top: number,
  ): HTMLTableRowElement {
    const s = n.status;
    const tr = el('tr', { 'data-node': String(n.id), 'data-role': s?.role ?? 'down' });
    const cell = (text: string) => tr.append(el('td', {}, text));
    cell(`n${n.id}`);
    cell(s?.role ?? `down (${n.error ?? 'no answer'})`);
    cell(String(s?.term ?? '–'));
    cell(String(s?.commitIndex ?? '–'));
    cell(String(s?.appliedIndex ?? '–'));
    const rate = this.nodeRates.get(n.id);
    cell(rate === undefined ? '–' : rate.toFixed(rate < 10 ? 1 : 0));
    const pr = progress.get(n.id);
    const bar = el('td');
    if (pr !== undefined && s?.role !== 'leader') {
      const meter = el('meter', {
        min: '0',
        max: String(Math.max(1, top)),
        value: String(pr.match),
      });
      bar.append(meter, el('span', {}, ` ${pr.match}/${top} ${pr.state}`));
    } else if (s?.role === 'leader') bar.textContent = 'leader';
    tr.append(bar);
    const actions = el('td');
    const stop = el('button', { 'data-action': 'stop' }, 'Stop');
    const start = el('button', { 'data-action': 'start' }, 'Start');
    // A node that answers can be stopped; one that does not, started (the server says if it
    // is in fact still running, only unresponsive).
    stop.disabled = s === null;
    start.disabled = s !== null;
    stop.addEventListener('click', () => void this.control(n.id, 'stop'));
    start.addEventListener('click', () => void this.control(n.id, 'start'));
    actions.append(stop, start);
    tr.append(actions);
    return tr;
  }

  private chart(snap: ClusterSnapshot, clusterCommitsPerSecond: number): void {
    const totals: Totals = { at: snap.at, requests: 0, latencySum: 0, latencyCount: 0 };
    const t = totals as { -readonly [K in keyof Totals]: number };
    for (const n of snap.nodes) {
      if (n.counters === null) continue;
      t.requests += n.counters.kvRequests;
      t.latencySum += n.counters.kvLatencySum;
      t.latencyCount += n.counters.kvLatencyCount;
    }
    const prev = this.last;
    this.last = totals;
    if (prev === undefined) return;
    const seconds = Math.max(0.001, (totals.at - prev.at) / 1000);
    const x = totals.at / 1000;
    const count = totals.latencyCount - prev.latencyCount;
    this.push(this.series, [
      x,
      Math.max(0, totals.requests - prev.requests) / seconds,
      clusterCommitsPerSecond,
    ]);
    this.push(this.latency, [
      x,
      count > 0 ? ((totals.latencySum - prev.latencySum) / count) * 1000 : 0,
    ]);
    void this.draw();
  }

  /** uPlot is loaded with the live view only, keeping the first page load small. */
  private async draw(): Promise<void> {
    if (this.throughputChart === undefined || this.latencyChart === undefined) {
      const [{ default: UPlot }] = await Promise.all([
        import('uplot'),
        import('uplot/dist/uPlot.min.css'),
      ]);
      this.throughputChart ??= this.makeChart(UPlot, 'lv-throughput', 'ops/s', [
        'requests/s (all nodes)',
        'cluster commits/s (its fastest member)',
      ]);
      this.latencyChart ??= this.makeChart(UPlot, 'lv-latency', 'ms', ['mean latency']);
    }
    this.throughputChart.setData(this.series);
    this.latencyChart.setData(this.latency);
  }

  private push(columns: number[][], values: readonly number[]): void {
    columns.forEach((col, i) => {
      col.push(values[i] ?? 0);
      if (col.length > POINTS_MAX) col.shift();
    });
  }

  private makeChart(
    UPlot: typeof uPlot,
    id: string,
    unit: string,
    names: readonly string[],
  ): uPlot {
    const colors = ['#f2b134', '#3cb371', '#4a90d9'];
    return new UPlot(
      {
        width: 460,
        height: 180,
        series: [
          {},
          ...names.map((label, i) => ({ label, stroke: colors[i] ?? '#fff', width: 2 })),
        ],
        axes: [{ stroke: '#8a94a3' }, { stroke: '#8a94a3', label: unit }],
        legend: { show: true },
      },
      [[], ...names.map(() => [])],
      byId(id),
    );
  }

  private async control(id: NodeId, action: 'stop' | 'start'): Promise<void> {
    const res = await fetch(`/api/nodes/${id}/${action}`, {
      method: 'POST',
      headers: { 'x-quorate-token': runToken() },
    });
    byId('lv-result').textContent = `${action} n${id}: ${res.status}`;
    void this.poll();
  }

  private async kv(method: 'PUT' | 'GET'): Promise<void> {
    const key = byId<HTMLInputElement>('lv-key').value;
    const value = byId<HTMLInputElement>('lv-value').value;
    const init: RequestInit = { method };
    if (method === 'PUT') {
      init.body = JSON.stringify({ value });
      init.headers = { 'content-type': 'application/json', 'x-quorate-token': runToken() };
    }
    const res = await fetch(`/api/kv/${encodeURIComponent(key)}`, init);
    byId('lv-result').textContent = `${method} ${key}: ${res.status} ${await res.text()}`;
  }
}

/**
 * The dashboard server's per-run token, written into the page it serves: state-changing
 * calls must carry it (src/cli/dashboard-guard.ts), which no other site's page can.
 */
function runToken(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="quorate-token"]')?.content ?? '';
}
