import type { Flight, NodeState } from '../../sim/interactive.ts';
import { CLIENT } from '../../sim/interactive.ts';
import { HiDpiCanvas } from './hidpi-canvas.ts';
import { type Point, roleColor, type Scene, toneColors } from './scene.ts';

const NODE_RADIUS = 30;
const RING_WIDTH = 5;
const CELL = 26;

/**
 * Draws a scene on a 2D canvas: the cluster on the left (nodes, timer rings, message
 * dots, the client) and every node's log on the right. Nothing is allocated per message
 * beyond what the scene holds, so five nodes stay far inside a 16 ms frame.
 */
export class SceneCanvas extends HiDpiCanvas {
  /** Where each node sits; the owner moves them when the user drags. */
  positions: Point[] = [];
  client: Point = { x: 0, y: 0 };

  /** The area the cluster is drawn in (the log panel takes the rest). */
  clusterBox(): { center: Point; radius: number } {
    const w = Math.min(this.width * 0.5, this.height + 80);
    // The ring leaves room around it to drag nodes apart into partition groups.
    const radius = Math.max(60, (Math.min(w, this.height) / 2 - NODE_RADIUS) * 0.55);
    return { center: { x: w / 2, y: this.height / 2 }, radius };
  }

  nodeAt(p: Point): number {
    return this.positions.findIndex((q) => Math.hypot(q.x - p.x, q.y - p.y) <= NODE_RADIUS);
  }

  draw(scene: Scene): void {
    const ctx = this.ctx;
    ctx.fillStyle = '#11151c';
    ctx.fillRect(0, 0, this.width, this.height);
    this.drawClient();
    for (const f of scene.flights) this.drawFlight(f, scene.now);
    scene.nodes.forEach((n, i) => {
      this.drawNode(n, this.positions[i], scene.now, n.id === scene.selected);
    });
    this.drawLogs(scene.nodes);
  }

  private endpoint(id: number): Point | undefined {
    return id === CLIENT ? this.client : this.positions[id - 1];
  }

  private drawClient(): void {
    const ctx = this.ctx;
    const { x, y } = this.client;
    ctx.fillStyle = '#2b3340';
    ctx.fillRect(x - 18, y - 12, 36, 24);
    ctx.fillStyle = '#cfd6e0';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('client', x, y);
  }

  private drawFlight(f: Flight, now: number): void {
    const a = this.endpoint(f.from);
    const b = this.endpoint(f.to);
    if (a === undefined || b === undefined) return;
    const span = f.arriveAt - f.sentAt;
    const progress = span <= 0 ? 1 : Math.min(1, Math.max(0, (now - f.sentAt) / span));
    if (f.lost !== undefined && progress > 0.5) return;
    const ctx = this.ctx;
    const x = a.x + (b.x - a.x) * progress;
    const y = a.y + (b.y - a.y) * progress;
    ctx.globalAlpha = f.lost === undefined ? 1 : 1 - progress * 1.6;
    ctx.fillStyle = toneColors[f.look.tone];
    ctx.beginPath();
    ctx.arc(x, y, f.look.tone === 'heartbeat' ? 4 : 6, 0, Math.PI * 2);
    ctx.fill();
    if (f.lost !== undefined) {
      ctx.strokeStyle = '#e05252';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(x - 5, y - 5);
      ctx.lineTo(x + 5, y + 5);
      ctx.moveTo(x + 5, y - 5);
      ctx.lineTo(x - 5, y + 5);
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
  }

  private drawNode(n: NodeState, p: Point | undefined, now: number, selected: boolean): void {
    if (p === undefined) return;
    const ctx = this.ctx;
    const role = n.up ? n.view.role : 'down';
    ctx.fillStyle = roleColor(role);
    ctx.beginPath();
    ctx.arc(p.x, p.y, NODE_RADIUS, 0, Math.PI * 2);
    ctx.fill();
    if (selected) {
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    if (n.up && n.view.electionTimer && Number.isFinite(n.timerDeadline)) {
      const total = Math.max(1, n.timerDeadline - n.timerStart);
      const left = Math.min(1, Math.max(0, (n.timerDeadline - now) / total));
      ctx.strokeStyle = '#e8edf3';
      ctx.lineWidth = RING_WIDTH;
      ctx.beginPath();
      ctx.arc(p.x, p.y, NODE_RADIUS + 7, -Math.PI / 2, -Math.PI / 2 + left * Math.PI * 2);
      ctx.stroke();
    }
    ctx.fillStyle = '#0d1117';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.font = 'bold 15px system-ui, sans-serif';
    ctx.fillText(`n${n.id}`, p.x, p.y - 7);
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillText(n.view.badge ?? `T${n.view.term}`, p.x, p.y + 9);
    ctx.fillStyle = '#cfd6e0';
    ctx.fillText(role, p.x, p.y + NODE_RADIUS + 20);
  }

  private drawLogs(nodes: readonly NodeState[]): void {
    const ctx = this.ctx;
    const left = this.clusterBox().center.x * 2 + 16;
    const rowHeight = Math.min(56, (this.height - 40) / Math.max(1, nodes.length));
    ctx.textBaseline = 'middle';
    nodes.forEach((n, row) => {
      const y = 30 + row * rowHeight;
      ctx.textAlign = 'left';
      ctx.fillStyle = roleColor(n.up ? n.view.role : 'down');
      ctx.font = 'bold 13px system-ui, sans-serif';
      ctx.fillText(`n${n.id}`, left, y);
      ctx.fillStyle = '#8a94a3';
      ctx.font = '10px system-ui, sans-serif';
      ctx.fillText(`c${n.view.commit} a${n.view.applied}`, left, y + 15);
      n.view.log.forEach((cell, i) => {
        const x = left + 56 + i * (CELL + 4);
        if (x + CELL > this.width) return;
        const committed = cell.index <= n.view.commit;
        ctx.fillStyle = committed ? '#3cb371' : '#11151c';
        ctx.strokeStyle = '#3cb371';
        ctx.lineWidth = 1.5;
        ctx.fillRect(x, y - CELL / 2, CELL, CELL);
        ctx.strokeRect(x, y - CELL / 2, CELL, CELL);
        ctx.fillStyle = committed ? '#0d1117' : '#cfd6e0';
        ctx.textAlign = 'center';
        ctx.font = '9px system-ui, sans-serif';
        ctx.fillText(cell.label.slice(0, 4), x + CELL / 2, y - 4);
        ctx.fillText(`${cell.index}·t${cell.term}`, x + CELL / 2, y + 7);
      });
    });
  }
}
