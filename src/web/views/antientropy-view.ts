import {
  type Range,
  SLOT_BITS,
  type Summary,
  sameSummary,
} from '../../gossip/antientropy/merkle.ts';
import type { NodeId } from '../../kernel/ids.ts';
import {
  type MerklePg,
  merklePlayground,
  type RepairSend,
  type ScuttlePg,
  scuttlePlayground,
  WatchedMerkle,
  WatchedScuttle,
} from '../protocols/antientropy.ts';
import { HiDpiCanvas } from '../render/hidpi-canvas.ts';
import { byId, el, setText } from './dom.ts';

const BACKGROUND = '#11151c';

const BASE_SPEED = 0.1;
const FRAME_GAP_MAX_MS = 100;
const PANEL_REFRESH_MS = 200;
/** Simulated ms between one replica's repairs: slow enough to watch a descent. */
const REPAIR_INTERVAL_MS = 2000;
const SCUTTLE_NODES = 5;
const SCUTTLE_GOSSIP_MS = 500;
/** Staleness samples: one per 250 simulated ms, the last 30 s. */
const SAMPLE_MS = 250;
const SAMPLES_MAX = 120;
/** Cells drawn per tree level (16 children per differing range, all levels of 4 bits). */
const CELLS_PER_LEVEL_MAX = 32;

export interface TreeCell {
  readonly range: Range;
  readonly a: Summary;
  readonly b: Summary;
  readonly differs: boolean;
  /** Compared by the latest exchange (a `hashes` summary or a key list of it was sent). */
  readonly visited: boolean;
}

function rangeKey(r: Range): string {
  return `${r.bits}:${r.prefix}`;
}

function hex(r: Range): string {
  return r.bits === 0 ? 'root' : r.prefix.toString(16).padStart(r.bits / 4, '0');
}

/** Staleness of every (holder, owner) pair: how many versions the holder is behind. */
export interface StaleSample {
  readonly at: number;
  readonly max: number;
  readonly mean: number;
  readonly stalePairs: number;
}

/**
 * The anti-entropy page: two real Merkle replicas whose trees are drawn side by side with
 * the differing branches lit as a repair descends, and five real Scuttlebutt nodes whose
 * (owner, version) tables go stale and fresh, with the staleness chart live.
 */
export class AntiEntropyView {
  merkle: MerklePg;
  scuttle: ScuttlePg;
  playing = true;
  speed = 2;
  writesPerSecond = 4;
  readonly samples: StaleSample[] = [];
  private writeSeq = 0;
  /** When the page last wrote to a Merkle replica: an exchange older than that compared other data. */
  private merkleWriteAt = 0;
  private nextWriteAt = 0;
  private nextSampleAt = 0;
  private lastFrame = 0;
  private lastPanel = 0;
  private readonly treeCanvas: HiDpiCanvas;
  private readonly chartCanvas: HiDpiCanvas;

  constructor() {
    this.treeCanvas = new HiDpiCanvas(byId<HTMLCanvasElement>('ae-tree'));
    this.chartCanvas = new HiDpiCanvas(byId<HTMLCanvasElement>('ae-chart'));
    this.merkle = merklePlayground(1, REPAIR_INTERVAL_MS);
    this.scuttle = this.buildScuttle();
    this.seedKeys(200);
    this.wire();
  }

  frame(t: number): void {
    const dt = this.lastFrame === 0 ? 0 : Math.min(FRAME_GAP_MAX_MS, t - this.lastFrame);
    this.lastFrame = t;
    if (this.playing) this.advance(dt * BASE_SPEED * this.speed);
    this.drawTrees();
    this.drawChart();
    if (t - this.lastPanel >= PANEL_REFRESH_MS) {
      this.lastPanel = t;
      this.refresh();
    }
  }

  /** Runs both simulations `ms` further, the Scuttlebutt writers and the sampling included. */
  advance(ms: number): void {
    this.merkle.runUntil(this.merkle.now + ms);
    const end = this.scuttle.now + ms;
    for (;;) {
      const next = Math.min(this.nextWriteAt, this.nextSampleAt);
      if (next > end) break;
      this.scuttle.runUntil(next);
      if (next === this.nextSampleAt) {
        this.sample();
        this.nextSampleAt += SAMPLE_MS;
      } else {
        this.writeRound();
      }
    }
    this.scuttle.runUntil(end);
  }

  private buildScuttle(): ScuttlePg {
    this.samples.length = 0;
    const pg = scuttlePlayground(
      1,
      SCUTTLE_NODES,
      Number(byId<HTMLInputElement>('ae-mtu').value),
      SCUTTLE_GOSSIP_MS,
    );
    this.nextWriteAt = pg.now;
    this.nextSampleAt = pg.now;
    return pg;
  }

  /** Each node writes one key; the rate sets how often a round comes. */
  private writeRound(): void {
    const gap = this.writesPerSecond > 0 ? 1000 / this.writesPerSecond : Number.POSITIVE_INFINITY;
    this.nextWriteAt = this.writesPerSecond > 0 ? this.nextWriteAt + gap : Number.POSITIVE_INFINITY;
    for (const id of this.scuttle.members) {
      this.writeSeq++;
      this.scuttle.clientRequest(`k${this.writeSeq % 16}=w${this.writeSeq}`, id);
    }
  }

  private setRate(perSecond: number): void {
    this.writesPerSecond = perSecond;
    this.nextWriteAt =
      perSecond > 0 ? this.scuttle.now + 1000 / perSecond : Number.POSITIVE_INFINITY;
  }

  private merkleCores(): WatchedMerkle[] {
    return this.merkle.members.flatMap((id) => {
      const c = this.merkle.core(id);
      return c instanceof WatchedMerkle ? [c] : [];
    });
  }

  scuttleCores(): WatchedScuttle[] {
    return this.scuttle.members.flatMap((id) => {
      const c = this.scuttle.core(id);
      return c instanceof WatchedScuttle ? [c] : [];
    });
  }

  /** `count` fresh keys written at n1; the repairs carry them to n2. */
  seedKeys(count: number): void {
    this.merkleWriteAt = this.merkle.now;
    for (let i = 0; i < count; i++) {
      this.writeSeq++;
      this.merkle.clientRequest(`key${this.writeSeq}=v${this.writeSeq}`, 1);
    }
  }

  /** `count` existing keys overwritten at n2: the trees differ in that many leaves. */
  damage(count: number): void {
    const b = this.merkleCores().find((c) => c.id === 2);
    const keys = [...(b?.node.tree.values() ?? [])].map((e) => e.key);
    this.merkleWriteAt = this.merkle.now;
    for (let i = 0; i < count && keys.length > 0; i++) {
      const key = keys[(this.writeSeq * 7 + i * 13) % keys.length]!;
      this.writeSeq++;
      this.merkle.clientRequest(`${key}=changed${this.writeSeq}`, 2);
    }
  }

  /**
   * The sends of the latest repair round: everything either replica sent since the latest
   * root summary went out. Both replicas repair on the same period, so a round usually holds
   * both exchanges (n1 asking n2 and n2 asking n1); the root of the other one counts when it
   * left within half a period of the latest. Empty until a round starts after the
   * page's last write.
   */
  latestExchange(): RepairSend[] {
    const cores = this.merkleCores();
    const roots = cores
      .map(
        (c) =>
          c.sends.findLast(
            (s) => s.type === 'hashes' && s.ranges.length === 1 && s.ranges[0] === '0:0',
          )?.at,
      )
      .filter((t): t is number => t !== undefined);
    if (roots.length === 0) return [];
    const latest = Math.max(...roots);
    const from = Math.min(...roots.filter((t) => t >= latest - REPAIR_INTERVAL_MS / 2));
    // A round that began before the page's last write compared the data as it was then.
    if (from < this.merkleWriteAt) return [];
    return cores.flatMap((c) => c.sends.filter((s) => s.at >= from));
  }

  /** The two trees' cells, level by level: every child of a range that differs or was compared. */
  treeCells(): TreeCell[][] {
    const [a, b] = this.merkleCores();
    if (a === undefined || b === undefined) return [];
    const visited = new Set(this.latestExchange().flatMap((s) => s.ranges));
    const cell = (range: Range): TreeCell => {
      const sa = a.node.tree.summary(range);
      const sb = b.node.tree.summary(range);
      return {
        range,
        a: sa,
        b: sb,
        differs: !sameSummary(sa, sb),
        visited: visited.has(rangeKey(range)),
      };
    };
    const levels: TreeCell[][] = [[cell({ bits: 0, prefix: 0 })]];
    for (let bits = 4; bits <= SLOT_BITS; bits += 4) {
      const row: TreeCell[] = [];
      for (const parent of levels.at(-1)!) {
        const children = Array.from({ length: 16 }, (_, i) => ({
          bits,
          prefix: parent.range.prefix * 16 + i,
        }));
        const expand = parent.differs || children.some((r) => visited.has(rangeKey(r)));
        if (!expand) continue;
        for (const r of children) {
          const c = cell(r);
          if (c.a.count + c.b.count > 0 || c.visited) row.push(c);
        }
      }
      if (row.length === 0) break;
      levels.push(row.slice(0, CELLS_PER_LEVEL_MAX));
    }
    return levels;
  }

  private sample(): void {
    const cores = this.scuttleCores();
    const own = new Map<NodeId, number>();
    for (const c of cores) own.set(c.id, c.node.digest().find(([o]) => o === c.id)?.[1] ?? 0);
    let max = 0;
    let sum = 0;
    let pairs = 0;
    let stale = 0;
    for (const c of cores) {
      const held = new Map(c.node.digest());
      for (const [owner, latest] of own) {
        if (owner === c.id) continue;
        const lag = Math.max(0, latest - (held.get(owner) ?? 0));
        max = Math.max(max, lag);
        sum += lag;
        pairs++;
        if (lag > 0) stale++;
      }
    }
    this.samples.push({
      at: this.scuttle.now,
      max,
      mean: pairs === 0 ? 0 : sum / pairs,
      stalePairs: stale,
    });
    if (this.samples.length > SAMPLES_MAX) this.samples.shift();
  }

  private wire(): void {
    const on = (id: string, event: string, fn: () => void) => byId(id).addEventListener(event, fn);
    on('ae-play', 'click', () => {
      this.playing = !this.playing;
      this.refresh();
    });
    on('ae-speed', 'input', () => {
      this.speed = 2 ** Number(byId<HTMLInputElement>('ae-speed').value);
      this.refresh();
    });
    on('ae-seed', 'click', () => this.seedKeys(100));
    on('ae-damage', 'click', () => this.damage(Number(byId<HTMLSelectElement>('ae-d').value)));
    on('ae-rate', 'input', () => {
      this.setRate(Number(byId<HTMLInputElement>('ae-rate').value));
      this.refresh();
    });
    on('ae-mtu', 'change', () => {
      this.scuttle = this.buildScuttle();
      this.refresh();
    });
    on('ae-mtu', 'input', () => setText('ae-mtu-label', byId<HTMLInputElement>('ae-mtu').value));
  }

  private drawTrees(): void {
    const ctx = this.treeCanvas.cleared(BACKGROUND);
    const w = this.treeCanvas.canvas.clientWidth;
    const levels = this.treeCells();
    const half = w / 2;
    const rowH = 44;
    for (const [side, x0] of [
      ['a', 0],
      ['b', half],
    ] as const) {
      ctx.fillStyle = '#cfd6e0';
      ctx.font = 'bold 13px system-ui, sans-serif';
      ctx.textAlign = 'left';
      ctx.textBaseline = 'top';
      ctx.fillText(side === 'a' ? 'n1’s tree' : 'n2’s tree', x0 + 10, 6);
      levels.forEach((row, level) => {
        const cw = Math.min(40, (half - 30) / Math.max(1, row.length) - 2);
        const y = 28 + level * rowH;
        ctx.fillStyle = '#8a94a3';
        ctx.font = '10px system-ui, sans-serif';
        ctx.fillText(`${level * 4} bits`, x0 + 4, y + 10);
        row.forEach((c, i) => {
          const x = x0 + 44 + i * (cw + 2);
          const s = side === 'a' ? c.a : c.b;
          ctx.fillStyle = !c.differs ? '#1f4d35' : c.visited ? '#f2b134' : '#5a1f1f';
          ctx.fillRect(x, y, cw, 30);
          if (c.differs && !c.visited) {
            ctx.strokeStyle = '#e05252';
            ctx.lineWidth = 1.5;
            ctx.strokeRect(x, y, cw, 30);
          }
          ctx.fillStyle = c.differs && c.visited ? '#0d1117' : '#e6edf3';
          ctx.textAlign = 'center';
          ctx.font = '9px ui-monospace, monospace';
          if (cw >= 14) {
            ctx.fillText(c.range.bits === 0 ? 'root' : hex(c.range).slice(-1), x + cw / 2, y + 3);
            ctx.fillText(String(s.count), x + cw / 2, y + 16);
          }
          ctx.textAlign = 'left';
        });
      });
    }
    ctx.strokeStyle = '#30363d';
    ctx.beginPath();
    ctx.moveTo(half, 0);
    ctx.lineTo(half, this.treeCanvas.canvas.clientHeight);
    ctx.stroke();
  }

  private drawChart(): void {
    const ctx = this.chartCanvas.cleared(BACKGROUND);
    const w = this.chartCanvas.canvas.clientWidth;
    const h = this.chartCanvas.canvas.clientHeight;
    const left = 40;
    const top = 14;
    const bottom = h - 24;
    const right = w - 10;
    const yMax = Math.max(4, ...this.samples.map((s) => Math.max(s.max, s.stalePairs)));
    const span = SAMPLES_MAX * SAMPLE_MS;
    const t1 = this.scuttle.now;
    const x = (t: number) => right - ((t1 - t) / span) * (right - left);
    const y = (v: number) => bottom - (v / yMax) * (bottom - top);
    ctx.strokeStyle = '#30363d';
    ctx.strokeRect(left, top, right - left, bottom - top);
    ctx.fillStyle = '#8a94a3';
    ctx.font = '10px system-ui, sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.fillText(String(yMax), left - 4, top);
    ctx.fillText('0', left - 4, bottom);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    ctx.fillText('last 30 simulated seconds', (left + right) / 2, bottom + 6);
    const line = (pick: (s: StaleSample) => number, color: string, label: string, at: number) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      this.samples.forEach((s, i) => {
        if (i === 0) ctx.moveTo(x(s.at), y(pick(s)));
        else ctx.lineTo(x(s.at), y(pick(s)));
      });
      ctx.stroke();
      ctx.fillStyle = color;
      ctx.textAlign = 'left';
      ctx.fillText(label, left + 8 + at, top + 4);
    };
    line((s) => s.max, '#ef6f3c', 'max versions behind', 0);
    line((s) => s.mean, '#f2b134', 'mean versions behind', 140);
    line((s) => s.stalePairs, '#4a90d9', 'stale (holder, owner) pairs', 290);
  }

  refresh(): void {
    setText('ae-play', this.playing ? 'Pause' : 'Play');
    setText('ae-speed-label', `${this.speed}x`);
    setText('ae-rate-label', `${this.writesPerSecond}/s`);
    setText('ae-mtu-label', byId<HTMLInputElement>('ae-mtu').value);
    const [a, b] = this.merkleCores();
    if (a !== undefined && b !== undefined) {
      const ex = this.latestExchange();
      const bytes = ex.reduce((n, s) => n + s.bytes, 0);
      const values = ex.filter((s) => s.type === 'values').reduce((n, s) => n + s.entries, 0);
      let full = 0;
      for (const e of a.node.tree.values())
        full += 2 + e.key.length + 16 + 5 + (e.value?.length ?? 0);
      const same = sameSummary(a.node.tree.rootSummary(), b.node.tree.rootSummary());
      const status = byId('ae-merkle');
      status.setAttribute('data-same', String(same));
      status.setAttribute('data-keys', `${a.node.tree.size},${b.node.tree.size}`);
      setText(
        'ae-merkle',
        `${same ? 'roots equal' : 'roots differ'}; n1 ${a.node.tree.size} keys, n2 ${b.node.tree.size}. Latest repair round (both directions): ${ex.length} messages, ${bytes} B, ${values} entries moved; the full state is ${full} B (${full === 0 ? 0 : ((bytes / full) * 100).toFixed(1)}%).`,
      );
    }
    const cores = this.scuttleCores();
    const own = new Map(
      cores.map((c) => [c.id, c.node.digest().find(([o]) => o === c.id)?.[1] ?? 0]),
    );
    const head = el('tr', {}, '');
    head.append(el('th', {}, 'holder \\ owner'), ...cores.map((c) => el('th', {}, `n${c.id}`)));
    byId('ae-table-head').replaceChildren(head);
    byId('ae-table').replaceChildren(
      ...cores.map((c) => {
        const held = new Map(c.node.digest());
        const row = el('tr', { 'data-node': String(c.id) });
        row.append(el('td', {}, `n${c.id}`));
        for (const owner of cores) {
          const v = held.get(owner.id) ?? 0;
          const lag = Math.max(0, (own.get(owner.id) ?? 0) - v);
          const td = el(
            'td',
            { 'data-lag': String(lag), class: lag === 0 ? 'fresh' : 'stale' },
            lag === 0 ? String(v) : `${v} (−${lag})`,
          );
          row.append(td);
        }
        return row;
      }),
    );
  }
}
