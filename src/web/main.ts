import './styles.css';
import type { AntiEntropyView } from './views/antientropy-view.ts';
import { byId } from './views/dom.ts';
import type { GossipView } from './views/gossip-view.ts';
import { LiveView } from './views/live-view.ts';
import { PlaygroundView } from './views/playground-view.ts';
import { ReplayView } from './views/replay-view.ts';
import type { TotemView } from './views/totem-view.ts';

type Tab = 'playground' | 'replay' | 'totem' | 'gossip' | 'antientropy' | 'live';
const tabs: readonly Tab[] = ['playground', 'replay', 'totem', 'gossip', 'antientropy', 'live'];

/** A page that animates: called once per animation frame while its tab is shown. */
interface Animated {
  frame(t: number): void;
}

const playground = new PlaygroundView();
const replay = new ReplayView();
const live = new LiveView();
let active: Tab = 'playground';

/** Pages built the first time their tab is shown, each its own chunk, so the first load stays small. */
const onDemand: Partial<Record<Tab, () => Promise<Animated>>> = {
  totem: () =>
    import('./views/totem-view.ts').then((m) => {
      const view = new m.TotemView();
      window.quorate.totem = view;
      return view;
    }),
  gossip: () =>
    import('./views/gossip-view.ts').then((m) => {
      const view = new m.GossipView();
      window.quorate.gossip = view;
      return view;
    }),
  antientropy: () =>
    import('./views/antientropy-view.ts').then((m) => {
      const view = new m.AntiEntropyView();
      window.quorate.antientropy = view;
      return view;
    }),
};
const built = new Map<Tab, Animated | Promise<Animated>>([
  ['playground', playground],
  ['replay', replay],
]);

function ensureBuilt(tab: Tab): void {
  const make = onDemand[tab];
  if (built.has(tab) || make === undefined) return;
  const pending = make().then((view) => {
    built.set(tab, view);
    return view;
  });
  built.set(tab, pending);
}

function show(tab: Tab): void {
  active = tab;
  for (const t of tabs) {
    byId(t).hidden = t !== tab;
    byId(`tab-${t}`).classList.toggle('active', t === tab);
  }
  ensureBuilt(tab);
  if (tab === 'live') live.start();
  else live.stop();
}

function fromHash(): Tab {
  const name = location.hash.slice(1);
  return (tabs as readonly string[]).includes(name) ? (name as Tab) : 'playground';
}

function frame(t: number): void {
  const view = built.get(active);
  if (view !== undefined && !(view instanceof Promise)) view.frame(t);
  requestAnimationFrame(frame);
}

/** A handle for the browser tests and for curious visitors at the console. */
declare global {
  interface Window {
    quorate: {
      playground: PlaygroundView;
      replay: ReplayView;
      live: LiveView;
      /** Set once the Totem tab was first shown. */
      totem?: TotemView;
      /** Set once the Gossip tab was first shown. */
      gossip?: GossipView;
      /** Set once the Anti-entropy tab was first shown. */
      antientropy?: AntiEntropyView;
    };
  }
}
window.quorate = { playground, replay, live };

window.addEventListener('hashchange', () => show(fromHash()));
show(fromHash());
requestAnimationFrame(frame);
