/**
 * A 2D canvas whose backing store follows the element's CSS size at the device's pixel
 * ratio, so that everything drawn in CSS pixels stays sharp on high-density screens. Every
 * canvas of the dashboard and the playgrounds draws through one.
 */
export class HiDpiCanvas {
  protected readonly ctx: CanvasRenderingContext2D;
  /** CSS size, as of the last resize(). */
  protected width = 0;
  protected height = 0;

  constructor(readonly canvas: HTMLCanvasElement) {
    const ctx = canvas.getContext('2d', { alpha: false });
    if (ctx === null) throw new Error('2D canvas is not available');
    this.ctx = ctx;
  }

  /** Matches the backing store to the element's CSS size; true when it changed. */
  resize(): boolean {
    const ratio = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    if (w === this.width && h === this.height) return false;
    this.width = w;
    this.height = h;
    this.canvas.width = Math.round(w * ratio);
    this.canvas.height = Math.round(h * ratio);
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return true;
  }

  /** Resizes, fills the whole canvas with `background`, and hands out the context. */
  cleared(background: string): CanvasRenderingContext2D {
    this.resize();
    this.ctx.fillStyle = background;
    this.ctx.fillRect(0, 0, this.width, this.height);
    return this.ctx;
  }
}
