import type { MemberStatus } from '../../gossip/types.ts';
import type { NodeId } from '../../kernel/ids.ts';
import type { Flight } from '../../sim/interactive.ts';
import { CLIENT } from '../../sim/interactive.ts';
import { theoryRounds } from '../protocols/gossip.ts';
import { HiDpiCanvas } from './hidpi-canvas.ts';
import { type Point, ringLayout, toneColors } from './scene.ts';

/** One node as the picture shows it: its own state, and how the observer sees it. */
export interface GossipNodeLook {
  readonly id: NodeId;
  readonly up: boolean;
  /** The observer's record of this node (undefined: not known to the observer). */
  readonly seenAs: MemberStatus | undefined;
  readonly health: number;
  /** When it delivered the latest event (undefined: not yet). */
  readonly learnedAt: number | undefined;
  /** The observer's open suspicion of it: the part of its longest timeout still left. */
  readonly suspicionLeft: number | undefined;
}

export interface RoundsPoint {
  readonly n: number;
  readonly rounds: number;
}

export interface GossipScene {
  readonly now: number;
  readonly observer: NodeId;
  readonly nodes: readonly GossipNodeLook[];
  readonly flights: readonly Flight[];
  readonly measured: readonly RoundsPoint[];
  readonly nodesMax: number;
}

export const statusColors: Readonly<Record<MemberStatus | 'unknown', string>> = {
  alive: '#3cb371',
  suspect: '#ef6f3c',
  dead: '#e05252',
  left: '#8a8f98',
  unknown: '#30363d',
};

/** How long a node glows after it learned the latest event (simulated ms). */
const WAVE_MS = 600;

/**
 * The gossip picture: nodes on a circle coloured by the observer's view of them, the
 * latest event as a colour wave (a halo that fades after a node learned it), suspicion as a
 * ring shrinking towards the verdict, each node's health score; on the right, rounds until
 * an event reached all, measured against push and push-pull theory.
 */
export class GossipCanvas extends HiDpiCanvas {
  positions: Point[] = [];
  private radius = 10;

  layout(count: number): void {
    const w = Math.min(this.width * 0.55, this.height + 60);
    const ring = Math.max(60, Math.min(w, this.height) / 2 - 40);
    this.radius = Math.max(3, Math.min(22, (Math.PI * ring) / count - 1));
    this.positions = ringLayout(count, { x: w / 2, y: this.height / 2 }, ring);
  }

  nodeAt(p: Point): number {
    const r = Math.max(6, this.radius);
    return this.positions.findIndex((q) => Math.hypot(q.x - p.x, q.y - p.y) <= r);
  }

  draw(scene: GossipScene): void {
    const ctx = this.ctx;
    ctx.fillStyle = '#11151c';
    ctx.fillRect(0, 0, this.width, this.height);
    // Dots only while few enough to follow; at hundreds of nodes the wave tells the story.
    if (scene.flights.length < 400) for (const f of scene.flights) this.drawFlight(f, scene.now);
    for (const n of scene.nodes) this.drawNode(n, scene);
    this.drawChart(scene);
  }

  private drawFlight(f: Flight, now: number): void {
    if (f.from === CLIENT || f.to === CLIENT) return;
    const a = this.positions[f.from - 1];
    const b = this.positions[f.to - 1];
    if (a === undefined || b === undefined) return;
    const span = f.arriveAt - f.sentAt;
    const t = span <= 0 ? 1 : Math.min(1, Math.max(0, (now - f.sentAt) / span));
    if (f.lost !== undefined && t > 0.5) return;
    const ctx = this.ctx;
    ctx.globalAlpha = f.lost === undefined ? 0.9 : 0.4;
    ctx.fillStyle = toneColors[f.look.tone];
    ctx.beginPath();
    ctx.arc(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, f.look.tone === 'append' ? 4 : 2.5, 0, 7);
    ctx.fill();
    ctx.globalAlpha = 1;
  }

  private drawNode(n: GossipNodeLook, scene: GossipScene): void {
    const p = this.positions[n.id - 1];
    if (p === undefined) return;
    const ctx = this.ctx;
    const r = this.radius;
    if (n.learnedAt !== undefined) {
      const age = scene.now - n.learnedAt;
      const glow = Math.max(0.25, 1 - age / WAVE_MS);
      ctx.fillStyle = `rgba(176,124,216,${glow.toFixed(2)})`;
      ctx.beginPath();
      ctx.arc(p.x, p.y, r + 4 + 6 * glow, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.fillStyle = n.id === scene.observer ? '#e6edf3' : statusColors[n.seenAs ?? 'unknown'];
    ctx.beginPath();
    ctx.arc(p.x, p.y, r, 0, Math.PI * 2);
    ctx.fill();
    if (!n.up) {
      ctx.strokeStyle = '#0d1117';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(p.x - r * 0.6, p.y - r * 0.6);
      ctx.lineTo(p.x + r * 0.6, p.y + r * 0.6);
      ctx.moveTo(p.x + r * 0.6, p.y - r * 0.6);
      ctx.lineTo(p.x - r * 0.6, p.y + r * 0.6);
      ctx.stroke();
    }
    if (n.suspicionLeft !== undefined) {
      ctx.strokeStyle = '#ef6f3c';
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(p.x, p.y, r + 5, -Math.PI / 2, -Math.PI / 2 + n.suspicionLeft * Math.PI * 2);
      ctx.stroke();
    }
    if (r >= 10) {
      ctx.fillStyle = '#0d1117';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.font = `bold ${Math.min(13, r)}px system-ui, sans-serif`;
      ctx.fillText(String(n.id), p.x, p.y);
    }
    if (n.up && n.health > 0) {
      // The health badge: Lifeguard's local score, 0 (healthy) to 7.
      const bx = p.x + r * 0.8;
      const by = p.y - r * 0.8;
      ctx.fillStyle = '#f2b134';
      ctx.beginPath();
      ctx.arc(bx, by, Math.max(4, r * 0.45), 0, Math.PI * 2);
      ctx.fill();
      if (r >= 10) {
        ctx.fillStyle = '#0d1117';
        ctx.font = 'bold 9px system-ui, sans-serif';
        ctx.fillText(String(n.health), bx, by);
      }
    }
  }

  private drawChart(scene: GossipScene): void {
    const ctx = this.ctx;
    const left = Math.min(this.width * 0.55, this.height + 60) + 40;
    const right = this.width - 20;
    const top = 30;
    const bottom = this.height - 40;
    if (right - left < 120) return;
    const nMin = 5;
    const nMax = Math.max(scene.nodesMax, 10);
    const yMax = Math.ceil(
      Math.max(theoryRounds('push', nMax), ...scene.measured.map((m) => m.rounds)) + 1,
    );
    const x = (n: number) =>
      left + ((Math.log(n) - Math.log(nMin)) / (Math.log(nMax) - Math.log(nMin))) * (right - left);
    const y = (r: number) => bottom - (r / yMax) * (bottom - top);
    ctx.strokeStyle = '#30363d';
    ctx.lineWidth = 1;
    ctx.strokeRect(left, top, right - left, bottom - top);
    ctx.fillStyle = '#8a94a3';
    ctx.font = '10px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const n of [5, 10, 20, 50, 100, 200]) {
      if (n <= nMax) ctx.fillText(String(n), x(n), bottom + 4);
    }
    ctx.fillText('nodes (log scale)', (left + right) / 2, bottom + 18);
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let r = 0; r <= yMax; r += Math.max(1, Math.round(yMax / 6))) {
      ctx.fillText(String(r), left - 6, y(r));
    }
    ctx.save();
    ctx.translate(left - 28, (top + bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'center';
    ctx.fillText('rounds until all know', 0, 0);
    ctx.restore();
    const curve = (scheme: 'push' | 'push-pull', color: string, label: string) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (let n = nMin; n <= nMax; n += Math.max(1, Math.round(n / 20))) {
        if (n === nMin) ctx.moveTo(x(n), y(theoryRounds(scheme, n)));
        else ctx.lineTo(x(n), y(theoryRounds(scheme, n)));
      }
      ctx.stroke();
      ctx.fillStyle = color;
      ctx.textAlign = 'right';
      ctx.fillText(label, right - 4, y(theoryRounds(scheme, nMax)) - 8);
    };
    curve('push', '#4a90d9', 'push: log₂N + ln N');
    curve('push-pull', '#5fc7c0', 'push-pull: log₃N + ln ln N');
    ctx.fillStyle = '#b07cd8';
    for (const m of scene.measured) {
      ctx.beginPath();
      ctx.arc(x(m.n), y(m.rounds), 4, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.textAlign = 'left';
    ctx.fillText('● measured: the real cores (rumour + digest)', left + 6, top + 10);
  }
}
