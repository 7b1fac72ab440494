import type { NodeId } from '../../kernel/ids.ts';
import { Playground } from '../../sim/interactive.ts';
import { ringKey, type TotemDurable, type TotemTypes } from '../../totem/types.ts';
import { TotemSenders, totemPlayground, WatchedTotem } from '../protocols/totem.ts';
import { TotemCanvas, type TotemNodeLook } from '../render/totem-canvas.ts';
import { byId, el, setText } from './dom.ts';

type TotemPg = Playground<TotemTypes, TotemDurable>;

/** Simulated ms per real ms at "1x": a ~12 ms hop takes ~120 ms to watch. */
const BASE_SPEED = 0.1;
const FRAME_GAP_MAX_MS = 100;
const PANEL_REFRESH_MS = 200;
const BANNERS_MAX = 6;

/** A configuration change as a banner: what it is, and which nodes delivered it so far. */
export interface ConfigBanner {
  readonly kind: 'transitional' | 'regular';
  readonly ring: string;
  readonly members: readonly NodeId[];
  readonly at: number;
  readonly deliveredAt: NodeId[];
}

const stateLabels = {
  operational: 'Operational',
  gather: 'Gather',
  commit: 'Commit',
  recovery: 'Recovery',
  down: 'down',
} as const;

/** Parses "1,2 | 3,4,5" into groups; ids outside 1..n are ignored. */
export function parseGroups(text: string, n: number): NodeId[][] {
  return text
    .split('|')
    .map((g) =>
      g
        .split(/[ ,]+/)
        .map(Number)
        .filter((id) => Number.isInteger(id) && id >= 1 && id <= n),
    )
    .filter((g) => g.length > 0);
}

/**
 * The Totem page: the real nodes in the interactive host, publishing senders, and the
 * faults the issue names (kill, partition, merge, loss), with the window as a setting.
 */
export class TotemView {
  pg: TotemPg;
  senders: TotemSenders;
  playing = true;
  speed = 1;
  readonly banners: ConfigBanner[] = [];
  private readonly canvas: TotemCanvas;
  private readonly seen = new WeakMap<WatchedTotem, number>();
  private selected = 1;
  private lastFrame = 0;
  private lastPanel = 0;
  private feedKey = '';

  constructor() {
    this.canvas = new TotemCanvas(byId<HTMLCanvasElement>('tm-canvas'));
    [this.pg, this.senders] = this.build();
    this.wire();
  }

  frame(t: number): void {
    const dt = this.lastFrame === 0 ? 0 : Math.min(FRAME_GAP_MAX_MS, t - this.lastFrame);
    this.lastFrame = t;
    if (this.canvas.resize()) this.canvas.layout(this.pg.members.length);
    if (this.playing) this.senders.runUntil(this.pg.now + dt * BASE_SPEED * this.speed);
    this.canvas.draw({
      now: this.pg.now,
      nodes: this.looks(),
      flights: this.pg.flights(),
      selected: this.selected,
    });
    if (t - this.lastPanel >= PANEL_REFRESH_MS) {
      this.lastPanel = t;
      this.refresh();
    }
  }

  /** Runs simulated time forward by `ms` at once (senders included), then redraws the panels. */
  advance(ms: number): void {
    this.senders.runUntil(this.pg.now + ms);
    this.refresh();
  }

  looks(): TotemNodeLook[] {
    return this.pg.members.map((id) => {
      const core = this.pg.core(id);
      if (!(core instanceof WatchedTotem)) {
        return {
          id,
          up: false,
          state: 'down',
          ring: '',
          members: [],
          aru: 0,
          holdsToken: false,
          delivered: [],
        };
      }
      const s = core.status();
      return {
        id,
        up: true,
        state: s.state,
        ring: ringKey(s.ring),
        members: s.members,
        aru: s.aru,
        holdsToken: core.holdsToken(),
        delivered: core.delivered,
      };
    });
  }

  private value(id: string): number {
    return Number(byId<HTMLInputElement>(id).value);
  }

  private build(): [TotemPg, TotemSenders] {
    const seed = this.value('tm-seed');
    const nodes = this.value('tm-nodes');
    const pg: TotemPg = new Playground(totemPlayground({ windowSize: this.value('tm-window') }), {
      seed: Number.isSafeInteger(seed) && seed >= 0 ? seed : 1,
      nodes,
      lossRate: this.value('tm-loss') / 100,
    });
    const senders = new TotemSenders(pg);
    const sliders = byId<HTMLInputElement>('tm-senders');
    sliders.max = String(nodes);
    if (Number(sliders.value) > nodes) sliders.value = String(nodes);
    senders.senders = Number(sliders.value);
    senders.safeEvery = byId<HTMLInputElement>('tm-safe').checked ? 3 : 0;
    byId<HTMLSelectElement>('tm-node').replaceChildren(
      ...pg.members.map((id) => el('option', { value: String(id) }, `n${id}`)),
    );
    const half = Math.ceil(nodes / 2);
    byId<HTMLInputElement>('tm-groups').value =
      `${pg.members.slice(0, half).join(',')} | ${pg.members.slice(half).join(',')}`;
    this.banners.length = 0;
    this.selected = 1;
    this.canvas.layout(nodes);
    return [pg, senders];
  }

  private reset(): void {
    [this.pg, this.senders] = this.build();
    this.refresh();
  }

  private target(): NodeId {
    return Number(byId<HTMLSelectElement>('tm-node').value);
  }

  private wire(): void {
    const on = (id: string, event: string, fn: () => void) => byId(id).addEventListener(event, fn);
    on('tm-play', 'click', () => {
      this.playing = !this.playing;
      this.refresh();
    });
    on('tm-speed', 'input', () => {
      this.speed = 2 ** this.value('tm-speed');
      this.refresh();
    });
    on('tm-reset', 'click', () => this.reset());
    on('tm-nodes', 'change', () => this.reset());
    on('tm-window', 'change', () => this.reset());
    on('tm-kill', 'click', () => this.pg.crash(this.target()));
    on('tm-restart', 'click', () => this.pg.restart(this.target()));
    on('tm-partition', 'click', () => {
      const groups = parseGroups(byId<HTMLInputElement>('tm-groups').value, this.pg.members.length);
      if (groups.length > 0) this.pg.partition(groups);
    });
    on('tm-merge', 'click', () => this.pg.heal());
    on('tm-loss', 'input', () => this.pg.setLossRate(this.value('tm-loss') / 100));
    on('tm-senders', 'input', () => {
      this.senders.senders = this.value('tm-senders');
      this.refresh();
    });
    on('tm-safe', 'change', () => {
      this.senders.safeEvery = byId<HTMLInputElement>('tm-safe').checked ? 3 : 0;
    });
    on('tm-node', 'change', () => {
      this.selected = this.target();
    });
    const c = this.canvas.canvas;
    c.addEventListener('click', (e) => {
      const r = c.getBoundingClientRect();
      const i = this.canvas.nodeAt({ x: e.clientX - r.left, y: e.clientY - r.top });
      if (i < 0) return;
      this.selected = i + 1;
      byId<HTMLSelectElement>('tm-node').value = String(i + 1);
    });
  }

  /** Collects configuration changes the nodes delivered since the last look. */
  private collectBanners(): void {
    for (const id of this.pg.members) {
      const core = this.pg.core(id);
      if (!(core instanceof WatchedTotem)) continue;
      const total = core.forgotten + core.delivered.length;
      const from = Math.max(this.seen.get(core) ?? 0, core.forgotten);
      for (let i = from; i < total; i++) {
        const e = core.delivered[i - core.forgotten];
        if (e?.kind !== 'config') continue;
        const members = e.members.join(',');
        const same = this.banners.find(
          (b) => b.kind === e.config && b.ring === e.ring && b.members.join(',') === members,
        );
        if (same !== undefined) same.deliveredAt.push(id);
        else {
          this.banners.push({
            kind: e.config,
            ring: e.ring,
            members: e.members,
            at: this.pg.now,
            deliveredAt: [id],
          });
          if (this.banners.length > BANNERS_MAX) this.banners.shift();
        }
      }
      this.seen.set(core, total);
    }
  }

  refresh(): void {
    this.collectBanners();
    setText('tm-play', this.playing ? 'Pause' : 'Play');
    setText('tm-time', `${this.pg.now.toFixed(0)} ms`);
    setText('tm-speed-label', `${this.speed < 1 ? this.speed.toFixed(2) : this.speed}x`);
    setText('tm-loss-label', `${Math.round(this.pg.lossRate * 100)}%`);
    setText('tm-window-label', byId<HTMLInputElement>('tm-window').value);
    setText('tm-senders-label', String(this.senders.senders));
    byId('tm-banners').replaceChildren(
      ...[...this.banners]
        .reverse()
        .map((b) =>
          el(
            'div',
            { class: `banner ${b.kind}`, 'data-kind': b.kind, 'data-members': b.members.join(',') },
            b.kind === 'transitional'
              ? `Transitional configuration {${b.members.join(',')}}: the survivors of ring ${b.ring} — delivered at ${b.deliveredAt.map((n) => `n${n}`).join(' ')}`
              : `Regular configuration, ring ${b.ring} {${b.members.join(',')}} — delivered at ${b.deliveredAt.map((n) => `n${n}`).join(' ')}`,
          ),
        ),
    );
    byId('tm-rows').replaceChildren(
      ...this.looks().map((n) => {
        const core = this.pg.core(n.id);
        const s = core instanceof WatchedTotem ? core.status() : undefined;
        const lastConfig = [...n.delivered].reverse().find((e) => e.kind === 'config');
        const messages = n.delivered.filter((e) => e.kind === 'message');
        const row = el('tr', { 'data-node': String(n.id), 'data-state': n.state });
        row.appendChild(
          rowCells(n, [
            `n${n.id}`,
            stateLabels[n.state],
            n.up ? n.ring : '',
            n.up ? `{${n.members.join(',')}}` : '',
            s === undefined ? '' : `${s.aru} / ${s.highSeq}`,
            String(messages.length),
            String(messages.filter((e) => e.kind === 'message' && e.mode === 'safe').length),
            s === undefined ? '' : String(s.queued),
            lastConfig?.kind === 'config'
              ? `${lastConfig.config} {${lastConfig.members.join(',')}}`
              : '',
          ]),
        );
        return row;
      }),
    );
    const captions = this.pg.captions();
    const feedKey = `${captions.length}:${captions.at(-1)?.at}:${captions.at(-1)?.text}`;
    if (feedKey !== this.feedKey) {
      this.feedKey = feedKey;
      byId('tm-feed').replaceChildren(
        ...[...captions]
          .reverse()
          .map((c) => el('li', {}, `${c.at.toFixed(0).padStart(5)} ms  ${c.text}`)),
      );
    }
  }
}

/** The cells of one node's row; the state cell is a badge the page styles by state. */
function rowCells(n: TotemNodeLook, texts: readonly string[]): DocumentFragment {
  const frag = document.createDocumentFragment();
  texts.forEach((text, i) => {
    const td = el('td', {}, '');
    if (i === 1) td.appendChild(el('span', { class: 'badge', 'data-state': n.state }, text));
    else td.textContent = text;
    frag.appendChild(td);
  });
  return frag;
}
