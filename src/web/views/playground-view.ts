import type { CoreTypes } from '../../kernel/core.ts';
import { Playground, type PlaygroundSettings } from '../../sim/interactive.ts';
import type { PlaygroundProtocol } from '../../sim/interactive-protocol.ts';
import { basicPaxosPlayground } from '../protocols/basic-paxos.ts';
import { raftPlayground } from '../protocols/raft.ts';
import { SceneCanvas } from '../render/canvas.ts';
import { groupsByDistance, ringLayout } from '../render/scene.ts';
import { byId, el, setText } from './dom.ts';
import type { ProtocolPage } from './protocol-page.ts';
import { basicPaxosTour, raftTour, type TourStop } from './tour.ts';

type AnyPlayground = Playground<CoreTypes, unknown>;
type AnyProtocol = PlaygroundProtocol<CoreTypes, unknown>;

/** Simulated ms per real ms at "1x": slow motion, so a 10 ms message takes 100 ms to cross. */
const BASE_SPEED = 0.1;
/** Longest real frame gap that is simulated; a background tab does not jump ahead. */
const FRAME_GAP_MAX_MS = 100;
/** How often the text panels are refreshed (the canvas redraws every frame). */
const PANEL_REFRESH_MS = 200;

const raftPage: ProtocolPage = {
  protocol: raftPlayground as unknown as AnyProtocol,
  tour: raftTour,
};

const bundledPages: Readonly<Record<string, ProtocolPage>> = {
  raft: raftPage,
  'basic-paxos': { protocol: basicPaxosPlayground as unknown as AnyProtocol, tour: basicPaxosTour },
};

/** Protocols fetched when first picked, each its own chunk: the first load stays small. */
const pagesOnDemand: Readonly<Record<string, () => Promise<ProtocolPage>>> = {
  'fast-paxos': () => import('./fast-paxos-page.ts').then((m) => m.fastPaxosPage),
  'multi-paxos': () => import('./multi-paxos-page.ts').then((m) => m.multiPaxosPage),
};

/**
 * The playground page: the canvas, its controls and the guided tour, around one
 * `Playground` that is rebuilt on reset (seed, node count, protocol).
 */
export class PlaygroundView {
  pg: AnyPlayground;
  playing = true;
  speed = 1;
  private readonly canvas: SceneCanvas;
  private readonly pages = new Map<string, ProtocolPage>(Object.entries(bundledPages));
  private selected = 0;
  private lastFrame = 0;
  private lastPanel = 0;
  private dragging = -1;
  private dragMoved = false;
  private requestCount = 0;
  private tour: readonly TourStop[] | undefined;
  private tourAt = 0;
  /** What the text panels show, to touch the DOM only when it changes. */
  private feedKey = '';
  private requestsKey = '';

  constructor() {
    this.canvas = new SceneCanvas(byId<HTMLCanvasElement>('pg-canvas'));
    this.pg = this.build();
    this.wireControls();
    this.wirePointer();
    // A reload may restore a picked protocol that is not bundled: fetch it, then rebuild.
    const picked = byId<HTMLSelectElement>('pg-protocol').value;
    if (!this.pages.has(picked)) this.switchProtocol(picked);
  }

  /** One animation frame: advance simulated time by the real time elapsed, then draw. */
  frame(t: number): void {
    const dt = this.lastFrame === 0 ? 0 : Math.min(FRAME_GAP_MAX_MS, t - this.lastFrame);
    this.lastFrame = t;
    if (this.canvas.resize()) this.layout();
    if (this.playing) this.pg.runUntil(this.pg.now + dt * BASE_SPEED * this.speed);
    this.canvas.draw({
      now: this.pg.now,
      nodes: this.pg.nodes(),
      flights: this.pg.flights(),
      selected: this.selected,
    });
    if (t - this.lastPanel >= PANEL_REFRESH_MS) {
      this.lastPanel = t;
      this.refreshPanels();
    }
  }

  /** Where node `id` is drawn, in CSS pixels from the canvas's top-left corner. */
  nodeCenter(id: number): { x: number; y: number } | undefined {
    const p = this.canvas.positions[id - 1];
    return p === undefined ? undefined : { x: p.x, y: p.y };
  }

  private settings(): Partial<PlaygroundSettings> {
    const seed = Number(byId<HTMLInputElement>('pg-seed').value);
    const nodes = Number(byId<HTMLSelectElement>('pg-nodes').value);
    const loss = Number(byId<HTMLInputElement>('pg-loss').value) / 100;
    return { seed: Number.isSafeInteger(seed) && seed >= 0 ? seed : 1, nodes, lossRate: loss };
  }

  /** The page of the protocol picked in the menu; Raft's until an on-demand one arrived. */
  private page(): ProtocolPage {
    return this.pages.get(byId<HTMLSelectElement>('pg-protocol').value) ?? raftPage;
  }

  private loadPage(name: string): Promise<ProtocolPage> {
    const loaded = this.pages.get(name);
    if (loaded !== undefined) return Promise.resolve(loaded);
    const load = pagesOnDemand[name];
    if (load === undefined) return Promise.resolve(raftPage);
    return load().then((page) => {
      this.pages.set(name, page);
      return page;
    });
  }

  private switchProtocol(name: string): void {
    void this.loadPage(name).then(() => {
      // The visitor may have picked yet another protocol while this one was loading.
      if (byId<HTMLSelectElement>('pg-protocol').value === name) this.reset();
    });
  }

  private build(): AnyPlayground {
    const page = this.page();
    const pg = new Playground(page.protocol, this.settings());
    const picker = byId<HTMLSelectElement>('pg-node');
    picker.replaceChildren(
      ...pg.members.map((id) => el('option', { value: String(id) }, `n${id}`)),
    );
    const action = byId<HTMLButtonElement>('pg-action');
    action.hidden = page.action === undefined;
    action.textContent = page.action?.label ?? '';
    setText('pg-legend', page.protocol.legend?.(pg.members) ?? '');
    this.selected = 0;
    this.requestCount = 0;
    this.canvas.positions = [];
    return pg;
  }

  private layout(): void {
    const { center, radius } = this.canvas.clusterBox();
    this.canvas.positions = ringLayout(this.pg.members.length, center, radius);
    this.canvas.client = { x: center.x - radius - 10, y: center.y + radius + 10 };
  }

  private reset(): void {
    this.pg = this.build();
    this.layout();
    this.refreshPanels();
  }

  private target(): number {
    return Number(byId<HTMLSelectElement>('pg-node').value);
  }

  private wireControls(): void {
    const on = (id: string, event: string, fn: () => void) => byId(id).addEventListener(event, fn);
    on('pg-play', 'click', () => {
      this.playing = !this.playing;
      this.refreshPanels();
    });
    on('pg-step', 'click', () => {
      this.playing = false;
      this.pg.step();
      this.refreshPanels();
    });
    on('pg-speed', 'input', () => {
      this.speed = 2 ** Number(byId<HTMLInputElement>('pg-speed').value);
      this.refreshPanels();
    });
    on('pg-reset', 'click', () => this.reset());
    on('pg-protocol', 'change', () =>
      this.switchProtocol(byId<HTMLSelectElement>('pg-protocol').value),
    );
    on('pg-action', 'click', () => {
      const action = this.page().action;
      if (action?.fresh === true) this.reset();
      action?.run(this.pg);
    });
    on('pg-nodes', 'change', () => this.reset());
    on('pg-crash', 'click', () => this.pg.crash(this.target()));
    on('pg-restart', 'click', () => this.pg.restart(this.target()));
    on('pg-heal', 'click', () => {
      this.pg.heal();
      this.layout();
    });
    on('pg-loss', 'input', () => this.pg.setLossRate(this.settings().lossRate ?? 0));
    on('pg-request', 'click', () => {
      this.requestCount++;
      this.pg.clientRequest(`x=${this.requestCount}`);
    });
    on('pg-tour', 'click', () => this.startTour());
    on('tour-next', 'click', () => this.tourStep(this.tourAt + 1));
    on('tour-exit', 'click', () => this.endTour());
  }

  private wirePointer(): void {
    const c = this.canvas.canvas;
    const point = (e: PointerEvent) => {
      const r = c.getBoundingClientRect();
      return { x: e.clientX - r.left, y: e.clientY - r.top };
    };
    c.addEventListener('pointerdown', (e) => {
      this.dragging = this.canvas.nodeAt(point(e));
      this.dragMoved = false;
      if (this.dragging >= 0) c.setPointerCapture(e.pointerId);
    });
    c.addEventListener('pointermove', (e) => {
      const p = this.canvas.positions[this.dragging];
      if (p === undefined) return;
      Object.assign(p, point(e));
      this.dragMoved = true;
    });
    c.addEventListener('pointerup', () => {
      const index = this.dragging;
      this.dragging = -1;
      if (index < 0) return;
      if (this.dragMoved) this.applyGroups();
      else {
        this.selected = index + 1;
        byId<HTMLSelectElement>('pg-node').value = String(index + 1);
      }
    });
  }

  /** Nodes dragged apart form partition groups; dragged back together, they heal. */
  private applyGroups(): void {
    const { radius } = this.canvas.clusterBox();
    const n = this.pg.members.length;
    // Neighbours on the default ring are linked; a node dragged clearly away is not.
    const link = 2 * radius * Math.sin(Math.PI / Math.max(3, n)) * 1.1;
    const groups = groupsByDistance(this.canvas.positions, link);
    if (groups.length <= 1) this.pg.heal();
    else this.pg.partition(groups.map((g) => g.map((i) => i + 1)));
  }

  /** The tour of the protocol picked in the menu. */
  private startTour(): void {
    const name = byId<HTMLSelectElement>('pg-protocol').value;
    void this.loadPage(name).then((page) => {
      this.tour = page.tour;
      byId('tour').hidden = false;
      this.reset();
      this.playing = true;
      this.tourStep(0);
    });
  }

  private tourStep(at: number): void {
    const tour = this.tour;
    if (tour === undefined) return;
    if (at >= tour.length) {
      this.endTour();
      return;
    }
    this.tourAt = at;
    if (tour[at]?.fresh === true) this.reset();
    tour[at]?.enter?.(this.pg);
    this.refreshTour();
  }

  private endTour(): void {
    this.tour = undefined;
    byId('tour').hidden = true;
  }

  private refreshTour(): void {
    const stop = this.tour?.[this.tourAt];
    if (stop === undefined) return;
    setText('tour-caption', stop.caption(this.pg));
    setText('tour-step', `${this.tourAt + 1} / ${this.tour?.length ?? 0}`);
    const next = byId<HTMLButtonElement>('tour-next');
    const ready = stop.ready(this.pg);
    if (next.disabled === ready) next.disabled = !ready;
  }

  private refreshPanels(): void {
    const pg = this.pg;
    pg.refreshRequests();
    setText('pg-play', this.playing ? 'Pause' : 'Play');
    setText('pg-time', `${pg.now.toFixed(1)} ms`);
    setText('pg-speed-label', `${this.speed < 1 ? this.speed.toFixed(2) : this.speed}x`);
    setText('pg-loss-label', `${Math.round(pg.lossRate * 100)}%`);
    const captions = pg.captions();
    const feedKey = `${captions.length}:${captions.at(-1)?.at}:${captions.at(-1)?.text}`;
    if (feedKey !== this.feedKey) {
      this.feedKey = feedKey;
      byId('pg-feed').replaceChildren(
        ...[...captions]
          .reverse()
          .map((c) => el('li', {}, `${c.at.toFixed(0).padStart(5)} ms  ${c.text}`)),
      );
    }
    const requests = pg.requests().slice(-6);
    const requestsKey = requests.map((r) => `${r.id}${r.phase}${r.index}${r.note}`).join('|');
    if (requestsKey !== this.requestsKey) {
      this.requestsKey = requestsKey;
      byId('pg-requests').replaceChildren(
        ...requests.map((r) =>
          el(
            'li',
            { 'data-phase': r.phase },
            `${r.value}: ${r.phase}${r.index > 0 ? ` @${r.index}` : ''} ${r.note}`,
          ),
        ),
      );
    }
    this.refreshTour();
  }
}
