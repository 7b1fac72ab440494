import type { NodeId } from '../../kernel/ids.ts';
import type { Flight } from '../../sim/interactive.ts';
import { CLIENT } from '../../sim/interactive.ts';
import type { TotemState } from '../../totem/types.ts';
import type { DeliveredEntry } from '../protocols/totem.ts';
import { HiDpiCanvas } from './hidpi-canvas.ts';
import { type Point, ringLayout, toneColors } from './scene.ts';

const NODE_RADIUS = 28;
const CELL_W = 30;
const CELL_H = 22;

/** What one Totem frame shows, all of it read from the real cores. */
export interface TotemScene {
  readonly now: number;
  readonly nodes: readonly TotemNodeLook[];
  readonly flights: readonly Flight[];
  readonly selected: NodeId;
}

export interface TotemNodeLook {
  readonly id: NodeId;
  readonly up: boolean;
  readonly state: TotemState | 'down';
  readonly ring: string;
  readonly members: readonly NodeId[];
  readonly aru: number;
  readonly holdsToken: boolean;
  readonly delivered: readonly DeliveredEntry[];
}

export const stateColors: Readonly<Record<TotemState | 'down', string>> = {
  operational: '#3cb371',
  gather: '#ef6f3c',
  commit: '#b07cd8',
  recovery: '#f2b134',
  down: '#8a8f98',
};

const ringPalette = ['#4a90d9', '#f2b134', '#d95d9b', '#5fc7c0', '#c6d84a', '#ef6f3c'];

function ringColor(ring: string): string {
  let h = 0;
  for (const ch of ring) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return ringPalette[h % ringPalette.length]!;
}

/**
 * The Totem picture: nodes on a circle with each ring drawn through its members, the
 * token as a labelled marker moving along the ring (or parked at its holder), datagrams as
 * numbered dots, and on the right each node's delivered stream: agreed messages blue, safe
 * green, delivered in a transitional configuration outlined dashed, and configuration
 * changes as T / R bars.
 */
export class TotemCanvas extends HiDpiCanvas {
  positions: Point[] = [];

  layout(count: number): void {
    const w = Math.min(this.width * 0.45, this.height + 60);
    const radius = Math.max(60, Math.min(w, this.height) / 2 - NODE_RADIUS - 40);
    this.positions = ringLayout(count, { x: w / 2, y: this.height / 2 }, radius);
  }

  nodeAt(p: Point): number {
    return this.positions.findIndex((q) => Math.hypot(q.x - p.x, q.y - p.y) <= NODE_RADIUS);
  }

  draw(scene: TotemScene): void {
    const ctx = this.ctx;
    ctx.fillStyle = '#11151c';
    ctx.fillRect(0, 0, this.width, this.height);
    this.drawRings(scene.nodes);
    for (const f of scene.flights) if (f.look.tone !== 'vote') this.drawFlight(f, scene.now);
    for (const n of scene.nodes) this.drawNode(n, n.id === scene.selected);
    for (const f of scene.flights) if (f.look.tone === 'vote') this.drawToken(f, scene.now);
    for (const n of scene.nodes) if (n.holdsToken) this.drawHeldToken(n);
    this.drawDelivered(scene.nodes);
  }

  private at(id: NodeId): Point | undefined {
    return this.positions[id - 1];
  }

  /** Each distinct ring (by id) through its members, in ring order. */
  private drawRings(nodes: readonly TotemNodeLook[]): void {
    const ctx = this.ctx;
    const drawn = new Set<string>();
    for (const n of nodes) {
      if (!n.up || n.state !== 'operational' || drawn.has(n.ring) || n.members.length < 2) continue;
      drawn.add(n.ring);
      ctx.strokeStyle = ringColor(n.ring);
      ctx.lineWidth = 3;
      ctx.globalAlpha = 0.55;
      ctx.beginPath();
      n.members.forEach((m, i) => {
        const p = this.at(m);
        if (p === undefined) return;
        if (i === 0) ctx.moveTo(p.x, p.y);
        else ctx.lineTo(p.x, p.y);
      });
      ctx.closePath();
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
  }

  private progress(f: Flight, now: number): number {
    const span = f.arriveAt - f.sentAt;
    return span <= 0 ? 1 : Math.min(1, Math.max(0, (now - f.sentAt) / span));
  }

  private drawFlight(f: Flight, now: number): void {
    if (f.from === CLIENT || f.to === CLIENT) return;
    const a = this.at(f.from);
    const b = this.at(f.to);
    if (a === undefined || b === undefined) return;
    const t = this.progress(f, now);
    if (f.lost !== undefined && t > 0.5) return;
    const ctx = this.ctx;
    const x = a.x + (b.x - a.x) * t;
    const y = a.y + (b.y - a.y) * t;
    const numbered = f.look.tone === 'append' || f.look.tone === 'appendReply';
    ctx.globalAlpha = f.lost === undefined ? 1 : 1 - t * 1.6;
    ctx.fillStyle = toneColors[f.look.tone];
    ctx.beginPath();
    ctx.arc(x, y, numbered ? 8 : 5, 0, Math.PI * 2);
    ctx.fill();
    if (numbered) {
      ctx.fillStyle = '#0d1117';
      ctx.font = 'bold 9px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(f.look.label, x, y);
    }
    ctx.globalAlpha = 1;
  }

  private drawToken(f: Flight, now: number): void {
    const a = this.at(f.from);
    const b = this.at(f.to);
    if (a === undefined || b === undefined) return;
    const t = this.progress(f, now);
    if (f.lost !== undefined && t > 0.5) return;
    this.tokenMarker(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, f.look.label, f.lost);
  }

  private drawHeldToken(n: TotemNodeLook): void {
    const p = this.at(n.id);
    if (p === undefined) return;
    this.tokenMarker(p.x + NODE_RADIUS, p.y - NODE_RADIUS, 'held (idle ring)', undefined);
  }

  private tokenMarker(x: number, y: number, label: string, lost: string | undefined): void {
    const ctx = this.ctx;
    ctx.fillStyle = lost === undefined ? '#ef6f3c' : '#e05252';
    ctx.beginPath();
    ctx.moveTo(x, y - 9);
    ctx.lineTo(x + 9, y);
    ctx.lineTo(x, y + 9);
    ctx.lineTo(x - 9, y);
    ctx.closePath();
    ctx.fill();
    const lines = label.split('\n');
    ctx.font = '10px ui-monospace, monospace';
    const w = Math.max(...lines.map((l) => ctx.measureText(l).width)) + 8;
    ctx.fillStyle = 'rgba(13,17,23,0.85)';
    ctx.fillRect(x + 11, y - 8, w, lines.length * 12 + 4);
    ctx.fillStyle = '#f7c59f';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    lines.forEach((l, i) => {
      ctx.fillText(l, x + 15, y - 6 + i * 12);
    });
  }

  private drawNode(n: TotemNodeLook, selected: boolean): void {
    const p = this.at(n.id);
    if (p === undefined) return;
    const ctx = this.ctx;
    ctx.fillStyle = stateColors[n.state];
    ctx.beginPath();
    ctx.arc(p.x, p.y, NODE_RADIUS, 0, Math.PI * 2);
    ctx.fill();
    if (selected) {
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    ctx.fillStyle = '#0d1117';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.font = 'bold 14px system-ui, sans-serif';
    ctx.fillText(`n${n.id}`, p.x, p.y - 7);
    ctx.font = '10px system-ui, sans-serif';
    ctx.fillText(n.up ? `aru ${n.aru}` : 'down', p.x, p.y + 8);
    ctx.fillStyle = '#cfd6e0';
    ctx.fillText(n.up ? `${n.state} · ${n.ring}` : 'down', p.x, p.y + NODE_RADIUS + 12);
  }

  private drawDelivered(nodes: readonly TotemNodeLook[]): void {
    const ctx = this.ctx;
    const left = Math.min(this.width * 0.45, this.height + 60) + 12;
    const rowH = Math.min(48, (this.height - 20) / Math.max(1, nodes.length));
    const fits = Math.max(1, Math.floor((this.width - left - 40) / (CELL_W + 3)));
    nodes.forEach((n, row) => {
      const y = 16 + row * rowH + rowH / 2;
      ctx.textAlign = 'left';
      ctx.textBaseline = 'middle';
      ctx.fillStyle = stateColors[n.state];
      ctx.font = 'bold 12px system-ui, sans-serif';
      ctx.fillText(`n${n.id}`, left, y);
      n.delivered.slice(-fits).forEach((e, i) => {
        const x = left + 34 + i * (CELL_W + 3);
        if (e.kind === 'config') {
          ctx.fillStyle = e.config === 'regular' ? '#e6edf3' : '#f2b134';
          ctx.fillRect(x + CELL_W / 2 - 3, y - CELL_H / 2 - 2, 6, CELL_H + 4);
          ctx.fillStyle = '#0d1117';
          ctx.font = 'bold 8px system-ui, sans-serif';
          ctx.textAlign = 'center';
          ctx.fillText(e.config === 'regular' ? 'R' : 'T', x + CELL_W / 2, y);
          return;
        }
        ctx.fillStyle = e.mode === 'safe' ? '#3cb371' : '#4a90d9';
        ctx.fillRect(x, y - CELL_H / 2, CELL_W, CELL_H);
        if (e.in === 'transitional') {
          ctx.setLineDash([3, 2]);
          ctx.strokeStyle = '#f2b134';
          ctx.lineWidth = 2;
          ctx.strokeRect(x, y - CELL_H / 2, CELL_W, CELL_H);
          ctx.setLineDash([]);
        }
        ctx.fillStyle = '#0d1117';
        ctx.font = '9px system-ui, sans-serif';
        ctx.textAlign = 'center';
        ctx.fillText(e.label, x + CELL_W / 2, y - 4);
        ctx.fillText(`#${e.seq}${e.mode === 'safe' ? ' s' : ''}`, x + CELL_W / 2, y + 6);
      });
    });
  }
}
