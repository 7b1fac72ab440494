import './styles.css';
import { byId } from './views/dom.ts';
import { LiveView } from './views/live-view.ts';
import { PlaygroundView } from './views/playground-view.ts';
import { ReplayView } from './views/replay-view.ts';

type Tab = 'playground' | 'replay' | 'live';
const tabs: readonly Tab[] = ['playground', 'replay', 'live'];

const playground = new PlaygroundView();
const replay = new ReplayView();
const live = new LiveView();
let active: Tab = 'playground';

function show(tab: Tab): void {
  active = tab;
  for (const t of tabs) {
    byId(t).hidden = t !== tab;
    byId(`tab-${t}`).classList.toggle('active', t === tab);
  }
  if (tab === 'live') live.start();
  else live.stop();
}

function fromHash(): Tab {
  const name = location.hash.slice(1);
  return (tabs as readonly string[]).includes(name) ? (name as Tab) : 'playground';
}

window.addEventListener('hashchange', () => show(fromHash()));
show(fromHash());

function frame(t: number): void {
  if (active === 'playground') playground.frame(t);
  else if (active === 'replay') replay.frame(t);
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

/** A handle for the browser tests and for curious visitors at the console. */
declare global {
  interface Window {
    quorate: { playground: PlaygroundView; replay: ReplayView; live: LiveView };
  }
}
window.quorate = { playground, replay, live };
