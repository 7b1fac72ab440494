import type { MemberStatus } from '../../gossip/types.ts';
import type { NodeId } from '../../kernel/ids.ts';
import {
  type GossipPg,
  type GossipWatch,
  gossipPlayground,
  relayRounds,
  theoryRounds,
  WatchedGossip,
} from '../protocols/gossip.ts';
import { GossipCanvas, type GossipNodeLook, type RoundsPoint } from '../render/gossip-canvas.ts';
import { byId, el, setText } from './dom.ts';

/** Simulated ms per real ms at "1x": a 200 ms gossip round takes most of a second to watch. */
const BASE_SPEED = 0.25;
const FRAME_GAP_MAX_MS = 100;
const PANEL_REFRESH_MS = 200;
/** Wall-clock ms a frame may spend simulating, and the simulated slice it runs at a time. */
const FRAME_WORK_MAX_MS = 12;
const SIM_CHUNK_MS = 20;
/** Simulated ms between automatic events, when on. */
const AUTO_EVENT_MS = 3000;
/** Rows of the "who sees whom" table: the nodes someone does not see alive. */
const ROWS_MAX = 12;

/** The latest event: who published it and when it was published there. */
interface Tracked {
  readonly key: string;
  readonly origin: NodeId;
  n: number;
  measured: boolean;
  /** Simulated ms from the origin to the last node. */
  ms?: number;
}

/**
 * The gossip page: the real gossip nodes in the interactive host (5 to 200 of them), the
 * simulator's monitor watching them, and rounds-to-all measured per event against theory.
 */
export class GossipView {
  pg: GossipPg;
  watch: GossipWatch;
  playing = true;
  speed = 1;
  autoEvents = true;
  observer: NodeId = 1;
  readonly measured: RoundsPoint[] = [];
  tracked: Tracked | undefined;
  private readonly canvas: GossipCanvas;
  private lastFrame = 0;
  private lastPanel = 0;
  private nextAutoAt = AUTO_EVENT_MS;
  private feedKey = '';

  constructor() {
    this.canvas = new GossipCanvas(byId<HTMLCanvasElement>('gs-canvas'));
    ({ pg: this.pg, watch: this.watch } = this.build());
    this.wire();
  }

  frame(t: number): void {
    const dt = this.lastFrame === 0 ? 0 : Math.min(FRAME_GAP_MAX_MS, t - this.lastFrame);
    this.lastFrame = t;
    if (this.canvas.resize()) this.canvas.layout(this.pg.members.length);
    if (this.playing) this.runFor(dt * BASE_SPEED * this.speed);
    this.canvas.draw({
      now: this.pg.now,
      observer: this.observer,
      nodes: this.looks(),
      flights: this.pg.flights(),
      measured: this.measured,
      nodesMax: Number(byId<HTMLInputElement>('gs-nodes').max),
    });
    if (t - this.lastPanel >= PANEL_REFRESH_MS) {
      this.lastPanel = t;
      this.refresh();
    }
  }

  /**
   * Runs `ms` of simulated time within a frame's budget: hundreds of nodes at high speed
   * cost more than a frame, and the page then runs slower than asked rather than freeze.
   */
  private runFor(ms: number): void {
    const target = this.pg.now + ms;
    const started = performance.now();
    while (this.pg.now < target && performance.now() - started < FRAME_WORK_MAX_MS) {
      this.runUntil(Math.min(target, this.pg.now + SIM_CHUNK_MS));
    }
  }

  /** Runs to `t`, publishing the automatic events on the way and measuring each. */
  runUntil(t: number): void {
    while (this.autoEvents && this.nextAutoAt <= t) {
      this.pg.runUntil(this.nextAutoAt);
      this.measure();
      this.publish();
      this.nextAutoAt += AUTO_EVENT_MS;
    }
    if (!this.autoEvents) this.nextAutoAt = Math.max(this.nextAutoAt, t + AUTO_EVENT_MS);
    this.pg.runUntil(t);
    this.measure();
  }

  /** Publishes an event from `from` (default: the observer, else the first live node). */
  publish(from?: NodeId): void {
    const origin = from ?? this.liveOrigin();
    const core = origin === undefined ? undefined : this.pg.core(origin);
    if (!(core instanceof WatchedGossip) || core.node.currentMode !== 'member') return;
    // Events are numbered per origin, so this one will be the origin's next.
    const seq = core.node.eventHead(origin!) + 1;
    this.tracked = { key: `${origin}.${seq}`, origin: origin!, n: 0, measured: false };
    this.pg.clientRequest(`event ${origin}.${seq}`, origin);
  }

  private liveOrigin(): NodeId | undefined {
    if (this.pg.core(this.observer) !== undefined) return this.observer;
    return this.pg.members.find((id) => this.pg.core(id) !== undefined);
  }

  private live(): WatchedGossip[] {
    return this.pg.members.flatMap((id) => {
      const c = this.pg.core(id);
      return c instanceof WatchedGossip ? [c] : [];
    });
  }

  /** Once every live node delivered the tracked event: rounds = spread time / gossip interval. */
  private measure(): void {
    const tr = this.tracked;
    if (tr === undefined || tr.measured) return;
    const live = this.live();
    const times = live.map((c) => c.learned.get(tr.key));
    const start = this.pg.core(tr.origin);
    const at = start instanceof WatchedGossip ? start.learned.get(tr.key) : undefined;
    if (at === undefined || times.some((x) => x === undefined)) return;
    const rounds = relayRounds(live, tr.key);
    if (rounds === undefined) return;
    tr.measured = true;
    tr.n = live.length;
    tr.ms = Math.max(...(times as number[])) - at;
    this.measured.push({ n: live.length, rounds });
    if (this.measured.length > 200) this.measured.shift();
  }

  looks(): GossipNodeLook[] {
    const obs = this.pg.core(this.observer);
    const node = obs instanceof WatchedGossip ? obs.node : undefined;
    const suspicions = new Map((node?.openSuspicions() ?? []).map((s) => [s.about, s]));
    const now = node?.clock ?? this.pg.now;
    const key = this.tracked?.key;
    return this.pg.members.map((id) => {
      const c = this.pg.core(id);
      const s = suspicions.get(id);
      return {
        id,
        up: c !== undefined,
        seenAs: id === this.observer ? 'alive' : node?.member(id)?.status,
        health: c instanceof WatchedGossip ? c.node.healthScore : 0,
        learnedAt: c instanceof WatchedGossip && key !== undefined ? c.learned.get(key) : undefined,
        suspicionLeft:
          s === undefined
            ? undefined
            : Math.max(0, Math.min(1, (s.latestAt - now) / Math.max(1, s.latestAt - s.startedAt))),
      };
    });
  }

  /** For each node: how many live nodes see it alive, suspect, dead, left (or not at all). */
  seenBy(id: NodeId): Record<MemberStatus | 'unknown', number> {
    const counts = { alive: 0, suspect: 0, dead: 0, left: 0, unknown: 0 };
    for (const c of this.live()) {
      if (c.id === id) continue;
      counts[c.node.member(id)?.status ?? 'unknown']++;
    }
    return counts;
  }

  private value(id: string): number {
    return Number(byId<HTMLInputElement>(id).value);
  }

  private build(): { pg: GossipPg; watch: GossipWatch } {
    const seed = this.value('gs-seed');
    const nodes = this.value('gs-nodes');
    const made = gossipPlayground({
      seed: Number.isSafeInteger(seed) && seed >= 0 ? seed : 1,
      nodes,
      fanout: this.value('gs-fanout'),
      packetBytesMax: this.value('gs-packet'),
      lossRate: this.value('gs-loss') / 100,
    });
    byId<HTMLSelectElement>('gs-node').replaceChildren(
      ...made.pg.members.map((id) => el('option', { value: String(id) }, `n${id}`)),
    );
    this.observer = 1;
    this.tracked = undefined;
    this.nextAutoAt = AUTO_EVENT_MS;
    this.canvas.layout(nodes);
    return made;
  }

  private reset(): void {
    ({ pg: this.pg, watch: this.watch } = this.build());
    this.refresh();
  }

  private wire(): void {
    const on = (id: string, event: string, fn: () => void) => byId(id).addEventListener(event, fn);
    on('gs-play', 'click', () => {
      this.playing = !this.playing;
      this.refresh();
    });
    on('gs-speed', 'input', () => {
      this.speed = 2 ** this.value('gs-speed');
      this.refresh();
    });
    on('gs-reset', 'click', () => this.reset());
    for (const id of ['gs-nodes', 'gs-fanout', 'gs-packet']) {
      on(id, 'input', () => this.refreshLabels());
      on(id, 'change', () => this.reset());
    }
    on('gs-loss', 'input', () => {
      this.pg.setLossRate(this.value('gs-loss') / 100);
      this.refreshLabels();
    });
    on('gs-node', 'change', () => {
      this.observer = Number(byId<HTMLSelectElement>('gs-node').value);
    });
    on('gs-kill', 'click', () => {
      this.pg.crash(this.observer);
      this.watch.monitor?.onCrash(this.observer);
    });
    on('gs-restart', 'click', () => this.pg.restart(this.observer));
    on('gs-publish', 'click', () => this.publish(this.observer));
    on('gs-auto', 'change', () => {
      this.autoEvents = byId<HTMLInputElement>('gs-auto').checked;
    });
    const c = this.canvas.canvas;
    c.addEventListener('click', (e) => {
      const r = c.getBoundingClientRect();
      const i = this.canvas.nodeAt({ x: e.clientX - r.left, y: e.clientY - r.top });
      if (i < 0) return;
      this.observer = i + 1;
      byId<HTMLSelectElement>('gs-node').value = String(i + 1);
    });
  }

  private refreshLabels(): void {
    setText('gs-nodes-label', byId<HTMLInputElement>('gs-nodes').value);
    setText('gs-fanout-label', byId<HTMLInputElement>('gs-fanout').value);
    setText('gs-packet-label', `${byId<HTMLInputElement>('gs-packet').value} B`);
    setText('gs-loss-label', `${Math.round(this.pg.lossRate * 100)}%`);
  }

  refresh(): void {
    this.refreshLabels();
    setText('gs-play', this.playing ? 'Pause' : 'Play');
    setText('gs-time', `${(this.pg.now / 1000).toFixed(1)} s`);
    setText('gs-speed-label', `${this.speed < 1 ? this.speed.toFixed(2) : this.speed}x`);
    const obs = this.pg.core(this.observer);
    const health = obs instanceof WatchedGossip ? obs.node.healthScore : undefined;
    setText(
      'gs-observer',
      health === undefined
        ? `n${this.observer} is down: pick a live node to see its view`
        : `n${this.observer}'s view (health ${health}/7): colours are how n${this.observer} sees each node`,
    );
    const live = this.live().length;
    const tr = this.tracked;
    const reached = tr === undefined ? 0 : this.live().filter((c) => c.learned.has(tr.key)).length;
    const last = this.measured.at(-1);
    const summary = byId('gs-event');
    summary.setAttribute('data-reached', String(reached));
    summary.setAttribute('data-live', String(live));
    summary.setAttribute('data-key', tr?.key ?? '');
    setText(
      'gs-event',
      tr === undefined
        ? 'no event yet'
        : `event ${tr.key}: reached ${reached} of ${live} live nodes${
            tr.measured && last !== undefined
              ? ` in ${last.rounds} rounds of relays, ${(tr.ms ?? 0).toFixed(0)} ms (theory at N=${last.n}: push ${theoryRounds('push', last.n).toFixed(1)}, push-pull ${theoryRounds('push-pull', last.n).toFixed(1)})`
              : ''
          }`,
    );
    const violation = this.watch.violation;
    const falseDead = this.watch.monitor?.falseDead ?? 0;
    const check = byId('gs-check');
    check.setAttribute('data-ok', String(violation === undefined));
    setText(
      'gs-check',
      violation === undefined
        ? `simulator checks hold; wrong dead verdicts: ${falseDead}`
        : `violation: ${violation}`,
    );
    const rows = this.pg.members
      .map((id) => ({ id, up: this.pg.core(id) !== undefined, seen: this.seenBy(id) }))
      .filter((r) => !r.up || r.seen.alive < live - 1)
      .slice(0, ROWS_MAX);
    byId('gs-rows').replaceChildren(
      ...rows.map((r) => {
        const tr = el('tr', {
          'data-node': String(r.id),
          'data-up': String(r.up),
          'data-dead': String(r.seen.dead),
          'data-suspect': String(r.seen.suspect),
          'data-alive': String(r.seen.alive),
          'data-observers': String(live - (r.up ? 1 : 0)),
        });
        const state = r.up ? 'alive' : 'dead';
        const badge = el('td');
        badge.appendChild(
          el('span', { class: 'badge', 'data-state': state }, r.up ? 'up' : 'down'),
        );
        tr.append(
          el('td', {}, `n${r.id}`),
          badge,
          el('td', {}, String(r.seen.alive)),
          el('td', {}, String(r.seen.suspect)),
          el('td', {}, String(r.seen.dead)),
          el('td', {}, String(r.seen.left + r.seen.unknown)),
        );
        return tr;
      }),
    );
    const captions = this.pg.captions();
    const feedKey = `${captions.length}:${captions.at(-1)?.at}:${captions.at(-1)?.text}`;
    if (feedKey !== this.feedKey) {
      this.feedKey = feedKey;
      byId('gs-feed').replaceChildren(
        ...[...captions]
          .reverse()
          .map((c) => el('li', {}, `${(c.at / 1000).toFixed(2).padStart(6)} s  ${c.text}`)),
      );
    }
  }
}
