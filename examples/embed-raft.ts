/**
 * Embed Raft with your own state machine and storage: three in-memory nodes, a counter
 * as the state machine, a Map of durable states as "disk". The core does no I/O; this
 * program is its host. Run it: `node embed-raft.js` after `tsc` (see examples/README.md).
 */
import type { NodeId } from 'quorate/kernel';
import { Rng } from 'quorate/kernel';
import {
  applyPersist,
  defaultRaftOptions,
  initialDurableState,
  makeConfig,
  RaftCore,
  type RaftDurableState,
  type RaftMsg,
} from 'quorate/raft';

/** Your state machine: it sees committed commands, in log order, exactly once each. */
class Counter {
  value = 0;
  apply(delta: number): void {
    this.value += delta;
  }
}

const ids: NodeId[] = [1, 2, 3];
const config = makeConfig(ids);
/** Your storage: what `applyPersist` made durable, per node (a file or a database in real life). */
const disks = new Map<NodeId, RaftDurableState<number>>(
  ids.map((id) => [id, initialDurableState<number>(config)]),
);
const nodes = new Map(
  ids.map((id) => [
    id,
    {
      core: RaftCore.create<number>(id, config, defaultRaftOptions<number>(), Rng.fromSeed(id)),
      counter: new Counter(),
    },
  ]),
);
const network: { from: NodeId; to: NodeId; msg: RaftMsg<number> }[] = [];

/** Runs every ready batch: persist first, then send, then apply what committed. */
function drain(now: number): void {
  for (let busy = true; busy; ) {
    busy = false;
    for (const [id, { core, counter }] of nodes) {
      const ready = core.ready();
      if (ready === undefined) continue;
      busy = true;
      for (const item of ready.persist) applyPersist(disks.get(id)!, item);
      for (const out of [...ready.early, ...ready.messages]) network.push({ from: id, ...out });
      for (const d of ready.deliver) {
        if (d.kind === 'entry' && d.entry.kind === 'normal') counter.apply(d.entry.data);
      }
      core.advance();
    }
    for (const { from, to, msg } of network.splice(0)) {
      nodes.get(to)!.core.receive(now, from, msg);
    }
  }
}

let now = 0;
const leader = (): NodeId | undefined =>
  ids.find((id) => nodes.get(id)!.core.status().role === 'leader');
for (; now < 5_000 && leader() === undefined; now += 10) {
  for (const { core } of nodes.values()) core.tick(now);
  drain(now);
}
const id = leader();
if (id === undefined) throw new Error('no leader elected in 5 simulated seconds');
for (const delta of [5, -2, 10])
  nodes.get(id)!.core.request(now, 1, { type: 'propose', id: delta, data: delta });
for (let until = now + 500; now < until; now += 10) {
  for (const { core } of nodes.values()) core.tick(now);
  drain(now);
}
const values = ids.map((n) => nodes.get(n)!.counter.value);
console.log(JSON.stringify({ leader: id, values }));
if (values.some((v) => v !== 13)) throw new Error(`replicas disagree: ${values.join(', ')}`);
