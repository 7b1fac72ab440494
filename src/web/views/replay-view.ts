import { SceneCanvas } from '../render/canvas.ts';
import { ringLayout } from '../render/scene.ts';
import { TraceModel } from '../replay/trace-model.ts';
import { byId } from './dom.ts';

/** Simulated ms per real ms while playing a trace, by default (slow motion, as in the playground). */
const REPLAY_SPEED_DEFAULT = 0.05;
const FRAME_GAP_MAX_MS = 100;

/**
 * Trace replay: load a `quorate sim --trace` file, then step through it record by record,
 * forward and backward, or play it in slow motion.
 */
export class ReplayView {
  model: TraceModel | undefined;
  /** Records applied so far (0 = before the first). */
  cursor = 0;
  playing = false;
  /** Simulated ms per real ms while playing: the speed control's value. */
  speed = REPLAY_SPEED_DEFAULT;
  private time = 0;
  private lastFrame = 0;
  private dirty = true;
  private readonly canvas: SceneCanvas;

  constructor() {
    this.canvas = new SceneCanvas(byId<HTMLCanvasElement>('rp-canvas'));
    byId<HTMLInputElement>('rp-file').addEventListener('change', (e) => {
      const file = (e.target as HTMLInputElement).files?.[0];
      if (file !== undefined) void file.text().then((text) => this.load(text, file.name));
    });
    const on = (id: string, fn: () => void) => byId(id).addEventListener('click', fn);
    on('rp-first', () => this.seek(0));
    on('rp-back', () => this.seek(this.cursor - 1));
    on('rp-forward', () => this.seek(this.cursor + 1));
    on('rp-last', () => this.seek(this.model?.length ?? 0));
    on('rp-play', () => {
      this.playing = !this.playing;
      this.dirty = true;
    });
    byId<HTMLSelectElement>('rp-speed').addEventListener('change', (e) => {
      const speed = Number((e.target as HTMLSelectElement).value);
      if (Number.isFinite(speed) && speed > 0) this.speed = speed;
    });
    byId<HTMLInputElement>('rp-slider').addEventListener('input', (e) => {
      this.seek(Number((e.target as HTMLInputElement).value));
    });
  }

  load(text: string, name: string): void {
    try {
      this.model = new TraceModel(text);
    } catch (err) {
      byId('rp-status').textContent = `${name}: ${(err as Error).message}`;
      return;
    }
    const m = this.model;
    byId('rp-status').textContent =
      `${name}: ${m.protocol}, ${m.members.length} nodes, ${m.length} records` +
      (m.truncated ? ' (cut: too many records)' : '');
    byId<HTMLInputElement>('rp-slider').max = String(m.length);
    this.layout();
    this.seek(0);
  }

  seek(cursor: number): void {
    const m = this.model;
    if (m === undefined) return;
    this.cursor = Math.max(0, Math.min(m.length, cursor));
    this.time = this.cursor === 0 ? 0 : m.records[this.cursor - 1]!.t;
    this.dirty = true;
  }

  private layout(): void {
    const { center, radius } = this.canvas.clusterBox();
    this.canvas.positions = ringLayout(this.model?.members.length ?? 0, center, radius);
    this.canvas.client = { x: center.x - radius - 10, y: center.y + radius + 10 };
  }

  frame(t: number): void {
    const dt = this.lastFrame === 0 ? 0 : Math.min(FRAME_GAP_MAX_MS, t - this.lastFrame);
    this.lastFrame = t;
    if (this.canvas.resize()) {
      this.layout();
      this.dirty = true;
    }
    const m = this.model;
    if (m === undefined) return;
    if (this.playing) {
      this.time += dt * this.speed;
      while (this.cursor < m.length && m.records[this.cursor]!.t <= this.time) this.cursor++;
      if (this.cursor >= m.length) this.playing = false;
      this.dirty = true;
    }
    if (!this.dirty) return;
    this.dirty = false;
    const at = m.at(this.cursor);
    this.canvas.draw({ now: this.time, nodes: at.nodes, flights: at.flights, selected: 0 });
    const rec = this.cursor === 0 ? undefined : m.records[this.cursor - 1];
    byId('rp-position').textContent = `${this.cursor} / ${m.length}  t=${this.time.toFixed(3)} ms`;
    byId('rp-record').textContent = rec === undefined ? '' : JSON.stringify(rec);
    byId('rp-caption').textContent = at.caption;
    byId('rp-play').textContent = this.playing ? 'Pause' : 'Play';
    byId<HTMLInputElement>('rp-slider').value = String(this.cursor);
  }
}
