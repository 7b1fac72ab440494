import type { Reply } from '../../kernel/core.ts';
import type { Outgoing } from '../../kernel/envelope.ts';
import { type ClientId, NO_NODE, type NodeId } from '../../kernel/ids.ts';
import { Rng } from '../../kernel/rng.ts';
import type { KvCommand, KvOp } from '../../kv/machine.ts';
import { defaultRaftOptions, type RaftOptions } from '../../raft/config.ts';
import {
  applyPersist,
  cloneDurableState,
  initialDurableState,
  type RaftDurableState,
} from '../../raft/durable.ts';
import { raftKvBinding } from '../bindings.ts';
import { RaftKvReplica, type RaftKvTypes } from '../raft-kv.ts';
import type { CallAnswer } from '../refusal.ts';
import {
  type CallRequest,
  defaultRouterOptions,
  Router,
  type RouterNotice,
  type RouterOptions,
  type RouterReply,
  type RouterTypes,
} from '../router.ts';

/**
 * Deterministic drivers for router tests: no timers, no sockets, time moved by hand. A
 * `RoutedRaftCluster` joins Raft KV nodes (router + replica, as real nodes run them) with a
 * message queue the test delivers, drops or holds; crashes keep what each node made durable.
 */
export type Msg = RouterTypes<RaftKvTypes>['msg'];
export type RaftRouter = Router<RaftKvTypes, RaftKvReplica>;

export const testRaftOptions: RaftOptions<KvCommand> = {
  ...defaultRaftOptions<KvCommand>(() => 64),
  commitHints: 'origin',
};

export function call(
  id: number,
  op: KvOp,
  more: Partial<Omit<CallRequest, 'type' | 'id' | 'op'>> = {},
): CallRequest {
  const read = op.f === 'get' || op.f === 'list';
  return {
    type: 'call',
    id,
    kind: read ? 'read' : 'write',
    session: 0,
    seq: 0,
    op,
    timeoutMs: 1000,
    forward: true,
    ...more,
  };
}

/** What one node said in the batches drained from it. */
export interface Said {
  readonly sent: Outgoing<Msg>[];
  /** Every reply, router answers and replica passthrough answers alike. */
  readonly replies: Reply<RouterReply<RaftKvTypes['reply']>>[];
  readonly answers: { client: ClientId; id: number; answer: CallAnswer }[];
  readonly notices: RouterNotice[];
}

/** Drains every batch of `router` (persist applied to `durable` when given). */
export function drain(
  router: RaftRouter,
  durable?: RaftDurableState<KvCommand>,
  said: Said = { sent: [], replies: [], answers: [], notices: [] },
): Said {
  for (let rd = router.ready(); rd !== undefined; rd = router.ready()) {
    if (durable !== undefined) for (const p of rd.persist) applyPersist(durable, p);
    said.sent.push(...rd.early, ...rd.messages);
    for (const r of [...rd.earlyReplies, ...rd.replies]) said.replies.push(r);
    for (const { client, reply } of [...rd.earlyReplies, ...rd.replies]) {
      if (reply.type === 'answer')
        said.answers.push({ client, id: reply.id, answer: reply.answer });
    }
    for (const e of rd.events) if (e.type === 'router') said.notices.push(e.notice);
    router.advance();
  }
  return said;
}

interface Node {
  router: RaftRouter | undefined;
  readonly durable: RaftDurableState<KvCommand>;
  readonly said: Said;
  incarnation: number;
}

interface InFlight {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly msg: Msg;
}

export class RoutedRaftCluster {
  now = 0;
  readonly nodes = new Map<NodeId, Node>();
  /** Messages sent and not yet delivered; `deliver` takes them in order. */
  readonly wire: InFlight[] = [];
  /** Links that lose every message (both directions). */
  private readonly cut = new Set<string>();

  constructor(
    readonly ids: readonly NodeId[],
    private readonly routerOptions: Partial<RouterOptions> = {},
    /** Members of `ids` that start as learners. */
    learners: readonly NodeId[] = [],
  ) {
    const voters = ids.filter((id) => !learners.includes(id));
    for (const id of ids) {
      const durable = initialDurableState<KvCommand>({ voters, learners: [...learners] });
      this.nodes.set(id, {
        router: undefined,
        durable,
        said: { sent: [], replies: [], answers: [], notices: [] },
        incarnation: 0,
      });
      this.boot(id);
    }
  }

  node(id: NodeId): Node {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  router(id: NodeId): RaftRouter {
    const r = this.node(id).router;
    if (r === undefined) throw new Error(`node ${id} is down`);
    return r;
  }

  /** (Re)starts `id` from what it made durable. */
  boot(id: NodeId): void {
    const n = this.node(id);
    n.incarnation += 1;
    const replica = RaftKvReplica.restore(
      id,
      cloneDurableState(n.durable),
      testRaftOptions,
      Rng.fromSeed(id * 1000 + n.incarnation),
    );
    n.router = new Router(
      replica,
      raftKvBinding<RaftKvReplica>((r) => r),
      {
        ...defaultRouterOptions,
        peers: this.ids,
        ...this.routerOptions,
      },
    );
    this.flush(id);
  }

  crash(id: NodeId): void {
    this.node(id).router = undefined;
  }

  isolate(id: NodeId): void {
    for (const other of this.ids) if (other !== id) this.cut.add(link(id, other));
  }

  heal(): void {
    this.cut.clear();
  }

  /** Hands `req` to node `id` for client `client`. */
  request(id: NodeId, client: ClientId, req: RouterTypes<RaftKvTypes>['request']): void {
    this.router(id).request(this.now, client, req);
    this.flush(id);
  }

  /** Node `to` receives `msg` from `from` now, as if over the wire (a peer played by hand). */
  inject(to: NodeId, from: NodeId, msg: Msg): void {
    this.router(to).receive(this.now, from, msg);
    this.flush(to);
  }

  /** Delivers queued messages until none is left (or `stepsMax` deliveries). */
  deliver(stepsMax = 10_000): void {
    for (let i = 0; i < stepsMax && this.wire.length > 0; i++) {
      const m = this.wire.shift() as InFlight;
      const to = this.nodes.get(m.to)?.router;
      if (to === undefined || this.cut.has(link(m.from, m.to))) continue;
      to.receive(this.now, m.from, m.msg);
      this.flush(m.to);
    }
  }

  /** Moves time to `until` in `stepMs` steps, ticking every live node and delivering. */
  run(untilAt: number, stepMs = 5): void {
    while (this.now < untilAt) {
      this.now = Math.min(untilAt, this.now + stepMs);
      for (const [id, n] of this.nodes) {
        if (n.router === undefined || n.router.deadline() > this.now) continue;
        n.router.tick(this.now);
        this.flush(id);
      }
      this.deliver();
    }
  }

  /** Runs until one node leads and every live node names it; returns it. */
  leader(withinMs = 5000): NodeId {
    const until = this.now + withinMs;
    while (this.now < until) {
      this.run(this.now + 10);
      const named = [...this.nodes.values()]
        .filter((n) => n.router !== undefined)
        .map((n) => n.router?.leader());
      const first = named[0];
      if (first !== undefined && first !== NO_NODE && named.every((l) => l === first)) {
        // The survivors of a crashed leader name it until they time out: wait that out.
        if (this.node(first).router?.replica.status().role === 'leader') return first;
      }
    }
    throw new Error('no agreed leader');
  }

  /** The answers node `id` gave its client `client`. */
  answersTo(id: NodeId, client: ClientId): CallAnswer[] {
    return this.node(id)
      .said.answers.filter((a) => a.client === client)
      .map((a) => a.answer);
  }

  notices(id: NodeId): RouterNotice[] {
    return this.node(id).said.notices;
  }

  private flush(id: NodeId): void {
    const n = this.node(id);
    if (n.router === undefined) return;
    const before = n.said.sent.length;
    drain(n.router, n.durable, n.said);
    for (const m of n.said.sent.slice(before)) this.wire.push({ from: id, to: m.to, msg: m.msg });
  }
}

function link(a: NodeId, b: NodeId): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}
