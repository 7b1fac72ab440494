import { assert, unreachable } from '../kernel/assert.ts';
import { type Core, OutputBuffer, type Ready } from '../kernel/core.ts';
import { type ClientId, NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { KvCommand, KvOp, KvResult } from '../kv/machine.ts';
import { type CallAnswer, classifyReplicaReply, type Refusal } from './refusal.ts';
import {
  checkFwdCall,
  checkFwdReply,
  type FwdCall,
  type RouterMsg,
  routerMsgKinds,
} from './router-msgs.ts';
import {
  defaultRouterOptions,
  type RoutedReplica,
  type RoutedTypes,
  type RouterBinding,
  type RouterNotice,
  type RouterOptions,
  type RouterReply,
  type RouterRequest,
  type RouterTypes,
} from './router-types.ts';

/**
 * The call router: the part of a node between its clients, its peers and its replica, as a
 * pure kernel `Core` so that the simulator runs exactly what a real node runs. It decides
 * everything a host used to decide on timers:
 *
 * - A client call (a KV write or linearizable read) on a follower is forwarded to the leader
 *   over the peer protocol (router-msgs.ts) and served there with forwarding off: one hop at
 *   most, so nodes that disagree about who leads cannot bounce a call between them. A
 *   forwarded write also asks the follower's own replica for its result once applied (Raft's
 *   commit hints make that a message earlier than the leader's answer).
 * - A refusal that passes (no leader yet, a leadership transfer) is asked again after
 *   `retryPauseMs`; a write whose outcome came back unknown is re-proposed under its session
 *   (exactly-once); every call ends by its deadline. Pauses and deadlines are times compared
 *   with `now` and reported through `deadline()`, never timers.
 * - Refusals are one typed vocabulary (refusal.ts), crossing the peer protocol as data.
 * - With removal rules (Raft), a member whose removal committed is told so, once when it
 *   commits and at most once per `removalNoticeIntervalMs` whenever it speaks again; its
 *   messages are dropped unread; a learner without a leader probes its peers so that one
 *   which removed it answers; and the host hears which peers to forget.
 *
 * Batches: the replica's batch passes through (persist, messages, deliveries, events), and
 * the router's answers to results the replica gave in its `replies` go out in the same batch
 * after the persist; answers to `earlyReplies`, refusals and forwarded messages depend on
 * nothing unpersisted and go early (kernel `Ready`, rules 3 and 4).
 */

export type {
  CallRequest,
  RemovalRules,
  RoutedReplica,
  RoutedTypes,
  RouterBinding,
  RouterEvent,
  RouterNotice,
  RouterOptions,
  RouterReply,
  RouterRequest,
  RouterTypes,
  RouterUnsafeTestingFaults,
} from './router-types.ts';
export { defaultRouterOptions } from './router-types.ts';

/** Where a call stands. */
type Stage =
  | { readonly at: 'replica'; readonly client: ClientId }
  | { readonly at: 'forwarded'; readonly to: NodeId; readonly applied: ClientId | undefined }
  | { readonly at: 'paused'; readonly until: number; readonly why: Refusal };

/** Who waits for a call's answer: a client of this node, or a peer that forwarded it. */
type Asker =
  | { readonly by: 'client'; readonly client: ClientId; readonly id: number }
  | { readonly by: 'peer'; readonly peer: NodeId; readonly id: number };

interface Call {
  readonly key: number;
  readonly kind: 'write' | 'read';
  readonly cmd: KvCommand;
  readonly deadline: number;
  readonly forward: boolean;
  readonly asker: Asker;
  stage: Stage;
  /** Re-proposals after an unknown outcome. */
  unknowns: number;
  /** Times this node has forwarded the call to a leader. */
  forwards: number;
  /** A write attempt reached a replica and may have applied. */
  mayHaveApplied: boolean;
  /** The attempt in flight may apply (its answer has not said otherwise). */
  attemptMayApply: boolean;
  proposed: boolean;
}

/** A `replica` request of the host, asked again while its refusal passes. */
interface AdminCall<Req> {
  readonly key: number;
  readonly client: ClientId;
  readonly req: Req;
  readonly deadline: number;
  /** The replica client id of the attempt in flight, or the time of the next one. */
  stage:
    | { readonly at: 'replica'; readonly client: ClientId }
    | { readonly at: 'paused'; readonly until: number };
}

/** Who a replica client id (the router's own) answers to. */
type Owner =
  | { readonly of: 'call'; readonly key: number }
  | { readonly of: 'applied'; readonly key: number }
  | { readonly of: 'host'; readonly client: ClientId }
  | { readonly of: 'admin'; readonly key: number };

export class Router<T extends RoutedTypes, R extends RoutedReplica<T>>
  implements Core<RouterTypes<T>>
{
  readonly id: NodeId;
  private readonly out = new OutputBuffer<RouterTypes<T>>();
  private innerOut = false;
  /** While a replica batch's (late) replies are handled: answers go after its persist. */
  private late = false;
  private now = Number.NEGATIVE_INFINITY;
  private readonly calls = new Map<number, Call>();
  private readonly admins = new Map<number, AdminCall<T['request']>>();
  private readonly owners = new Map<ClientId, Owner>();
  private nextKey = 1;
  private nextClient: ClientId = 1;
  /** Members removed for good (committed tombstone and configuration). */
  private readonly removedPeers = new Set<NodeId>();
  /** Tombstoned members still in the committed configuration (a removal under way). */
  private readonly tombstoned = new Set<NodeId>();
  private readonly toldAt = new Map<NodeId, number>();
  private removed = false;
  /** Since when this node has known no leader (undefined while it knows one). */
  private leaderlessSince: number | undefined;
  /** When the next probe check is due: -Infinity asks for a first tick to arm it. */
  private nextProbeAt: number;
  private wasOrphaned = false;

  constructor(
    readonly replica: R,
    private readonly binding: RouterBinding<T, R>,
    private readonly options: RouterOptions = defaultRouterOptions,
  ) {
    this.id = replica.id;
    for (const name of [
      'callTimeoutMs',
      'retryPauseMs',
      'leaderlessPatienceMs',
      'callsMax',
      'removalNoticeIntervalMs',
      'probeIntervalMs',
    ] as const) {
      const v = options[name];
      assert(Number.isSafeInteger(v) && v >= 1, `${name} must be an integer >= 1, got ${v}`);
    }
    assert(
      Number.isSafeInteger(options.unknownRetriesMax) && options.unknownRetriesMax >= 0,
      `unknownRetriesMax must be an integer >= 0, got ${options.unknownRetriesMax}`,
    );
    for (const kind of routerMsgKinds) {
      assert(!binding.msgKinds.has(kind), `the replica's message kind '${kind}' is the router's`);
    }
    const removal = binding.removal;
    this.nextProbeAt = removal === undefined ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
    if (removal !== undefined) {
      for (const id of removal.tombstones(replica)) this.tombstoned.add(id);
      // Known at start: told (again) only when it speaks, so a restart sends nothing.
      this.settleTombstones(false);
    }
  }

  /** Who leads, as this node knows it (NO_NODE when none). */
  leader(): NodeId {
    return this.binding.leader(this.replica);
  }

  /** Calls in flight, own and forwarded. */
  pendingCalls(): number {
    return this.calls.size;
  }

  /** The peers this node's calls are forwarded to right now (the host watches their links). */
  forwardTargets(): NodeId[] {
    const to = new Set<NodeId>();
    for (const c of this.calls.values()) if (c.stage.at === 'forwarded') to.add(c.stage.to);
    return [...to];
  }

  /** Members whose removal this node has committed. */
  removedMembers(): ReadonlySet<NodeId> {
    return this.removedPeers;
  }

  // -------------------------------------------------------------------------------------
  // Inputs

  tick(now: number): void {
    this.at(now);
    this.replica.tick(now);
    for (const call of [...this.calls.values()]) {
      if (call.deadline <= now) this.expire(call);
      else if (call.stage.at === 'paused' && call.stage.until <= now) this.route(call);
    }
    for (const admin of [...this.admins.values()]) {
      if (admin.deadline <= now) this.endAdmin(admin, undefined);
      else if (admin.stage.at === 'paused' && admin.stage.until <= now) this.submitAdmin(admin);
    }
    this.maybeProbe();
    this.endInput();
  }

  receive(now: number, from: NodeId, msg: RouterTypes<T>['msg']): void {
    this.at(now);
    const type = (msg as { type?: unknown } | null)?.type;
    if (type === 'removed') {
      this.learnRemoved(from);
    } else if (this.removedPeers.has(from)) {
      this.tellRemoved(from);
    } else if (type === 'fwdCall') {
      this.serveForwarded(from, msg);
    } else if (type === 'fwdReply') {
      this.onForwardReply(from, msg);
    } else if (type === 'probe') {
      // Only a peer that removed this node answers a probe (above).
    } else if (typeof type === 'string' && this.binding.msgKinds.has(type)) {
      this.replica.receive(now, from, msg as T['msg']);
    } else {
      this.notice({ type: 'dropped', from, why: `unknown message type ${JSON.stringify(type)}` });
    }
    this.endInput();
  }

  request(now: number, client: ClientId, req: RouterRequest<T['request']>): void {
    this.at(now);
    switch (req.type) {
      case 'replica': {
        if (req.timeoutMs === undefined) {
          const id = this.nextClient++;
          this.owners.set(id, { of: 'host', client });
          this.replica.request(now, id, req.req);
        } else {
          const admin: AdminCall<T['request']> = {
            key: this.nextKey++,
            client,
            req: req.req,
            deadline: now + Math.max(1, Math.min(req.timeoutMs, this.options.callTimeoutMs)),
            stage: { at: 'paused', until: now },
          };
          this.admins.set(admin.key, admin);
          this.submitAdmin(admin);
        }
        break;
      }
      case 'call': {
        const asker: Asker = { by: 'client', client, id: req.id };
        const refusal = req.trusted === true ? undefined : this.binding.admit?.(req.op);
        if (refusal === undefined) this.startCall(asker, req, req.timeoutMs, req.forward);
        else this.answer(asker, { type: 'refused', refusal });
        break;
      }
      default:
        unreachable(req, 'router request');
    }
    this.endInput();
  }

  /**
   * The host could not hand a forwarded call to `peer` (no connection to it): every call
   * whose `fwdCall` just left for it is refused with `peer` as the leader hint, so the
   * client (or the HTTP layer) can reach it another way. Nothing was sent, so nothing applied.
   */
  unsent(now: number, peer: NodeId, msg: RouterMsg): void {
    this.at(now);
    if (msg.type !== 'fwdCall') return;
    const call = this.calls.get(msg.id);
    if (call === undefined || call.stage.at !== 'forwarded' || call.stage.to !== peer) return;
    call.attemptMayApply = false;
    this.finish(call, { type: 'refused', refusal: { type: 'notLeader', leader: peer } });
    this.endInput();
  }

  /**
   * The connection to `peer` broke: calls forwarded to it end now rather than at their
   * deadline, so clients move on while a new leader is elected.
   */
  peerLost(now: number, peer: NodeId): void {
    this.at(now);
    for (const call of [...this.calls.values()]) {
      if (call.stage.at !== 'forwarded' || call.stage.to !== peer) continue;
      if (call.kind === 'write') {
        this.finish(call, refused('outcomeUnknown', `lost the connection to leader ${peer}`));
      } else {
        this.pause(call, { type: 'retry', reason: `lost the connection to leader ${peer}` });
      }
    }
    this.endInput();
  }

  deadline(): number {
    let due = this.replica.deadline();
    if (this.nextProbeAt < due) due = this.nextProbeAt;
    for (const c of this.calls.values()) {
      const at = c.stage.at === 'paused' && c.stage.until < c.deadline ? c.stage.until : c.deadline;
      if (at < due) due = at;
    }
    for (const a of this.admins.values()) {
      const at = a.stage.at === 'paused' && a.stage.until < a.deadline ? a.stage.until : a.deadline;
      if (at < due) due = at;
    }
    return due;
  }

  ready(): Ready<RouterTypes<T>> | undefined {
    if (this.out.isOut()) return undefined;
    while (!this.innerOut) {
      const rd = this.replica.ready();
      if (rd === undefined) break;
      this.innerOut = true;
      this.translate(rd);
      if (this.out.hasPending()) break;
      this.innerOut = false;
      this.replica.advance();
    }
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
    if (this.innerOut) {
      this.innerOut = false;
      this.replica.advance();
    }
  }

  // -------------------------------------------------------------------------------------
  // Calls

  private startCall(
    asker: Asker,
    cmd: { kind: 'write' | 'read'; session: number; seq: number; op: KvOp },
    timeoutMs: number,
    forward: boolean,
  ): void {
    if (this.removed) {
      this.answer(asker, refused('removed', `node ${this.id} was removed from the cluster`));
      return;
    }
    if (this.calls.size >= this.options.callsMax) {
      this.answer(asker, refused('overloaded', `${this.calls.size} calls in flight`));
      return;
    }
    const call: Call = {
      key: this.nextKey++,
      kind: cmd.kind,
      cmd: { session: cmd.session, seq: cmd.seq, op: cmd.op },
      deadline: this.now + Math.max(1, Math.min(timeoutMs, this.options.callTimeoutMs)),
      forward,
      asker,
      stage: { at: 'paused', until: this.now, why: { type: 'retry', reason: 'not started' } },
      unknowns: 0,
      forwards: 0,
      mayHaveApplied: false,
      attemptMayApply: false,
      proposed: false,
    };
    this.calls.set(call.key, call);
    this.route(call);
  }

  /** Forwards the call to the leader this node knows, or hands it to its own replica. */
  private route(call: Call): void {
    const leader = this.leader();
    if (call.forward && leader !== NO_NODE && leader !== this.id) this.forwardTo(call, leader);
    else this.submit(call);
  }

  private submit(call: Call): void {
    const client = this.nextClient++;
    this.owners.set(client, { of: 'call', key: call.key });
    call.stage = { at: 'replica', client };
    call.attemptMayApply = call.kind === 'write';
    const origin = call.asker.by === 'peer' ? call.asker.peer : undefined;
    this.replica.request(this.now, client, this.binding.kvRequest(client, call.cmd, origin));
  }

  private forwardTo(call: Call, leader: NodeId): void {
    assert(call.forward && leader !== this.id && leader !== NO_NODE, 'forwarding a local call');
    const sessionless =
      this.options.unsafeTestingFaults?.reforwardWritesWithoutSession === true &&
      call.kind === 'write' &&
      call.forwards > 0;
    call.forwards++;
    const msg: FwdCall = {
      type: 'fwdCall',
      id: call.key,
      kind: call.kind,
      session: sessionless ? 0 : call.cmd.session,
      seq: sessionless ? 0 : call.cmd.seq,
      op: call.cmd.op,
      timeoutMs: Math.max(1, Math.ceil(call.deadline - this.now)),
    };
    this.out.sendEarly(leader, msg);
    call.attemptMayApply = call.kind === 'write';
    let applied: ClientId | undefined;
    const build = this.binding.appliedRequest;
    if (call.kind === 'write' && call.cmd.session !== 0 && build !== undefined) {
      applied = this.nextClient++;
      this.owners.set(applied, { of: 'applied', key: call.key });
      this.replica.request(this.now, applied, build(applied, call.cmd.session, call.cmd.seq));
    }
    call.stage = { at: 'forwarded', to: leader, applied };
    if (this.options.unsafeTestingFaults?.answerForwardedWritesEarly && call.kind === 'write') {
      this.finish(call, { type: 'result', result: madeUpResult(call.cmd.op) });
    }
  }

  /** A replica's answer to one of the router's own requests. */
  private onReplicaReply(client: ClientId, reply: T['reply']): void {
    const owner = this.owners.get(client);
    if (owner === undefined) return; // its call ended already
    this.owners.delete(client);
    switch (owner.of) {
      case 'host':
        this.emitReply(owner.client, { type: 'replica', reply });
        return;
      case 'admin': {
        const admin = this.admins.get(owner.key);
        if (admin?.stage.at !== 'replica' || admin.stage.client !== client) return;
        const answer = classifyReplicaReply(reply, 'write');
        const passing = answer.type === 'refused' && answer.refusal.type === 'retry';
        const until = this.now + this.options.retryPauseMs;
        if (passing && reply.type === 'rejected' && until < admin.deadline) {
          admin.stage = { at: 'paused', until };
        } else {
          this.endAdmin(admin, reply);
        }
        return;
      }
      case 'applied': {
        const call = this.calls.get(owner.key);
        if (call?.stage.at !== 'forwarded' || call.stage.applied !== client) return;
        if (reply.type === 'result') this.finish(call, { type: 'result', result: reply.result });
        return;
      }
      case 'call': {
        const call = this.calls.get(owner.key);
        if (call?.stage.at !== 'replica' || call.stage.client !== client) return;
        this.onAttemptAnswer(call, classifyReplicaReply(reply, call.kind), 'replica');
        return;
      }
      default:
        unreachable(owner, 'owner');
    }
  }

  /** The answer to one attempt, from this node's replica or from the leader it forwarded to. */
  private onAttemptAnswer(call: Call, answer: CallAnswer, from: 'replica' | 'leader'): void {
    if (answer.type === 'result') {
      if (from === 'replica' && call.kind === 'write') this.noteProposed(call);
      this.finish(call, answer);
      return;
    }
    const refusal = answer.refusal;
    switch (refusal.type) {
      case 'notLeader': {
        call.attemptMayApply = false;
        const hint = refusal.leader;
        const elsewhere = hint !== NO_NODE && hint !== this.id;
        if (from === 'replica' && elsewhere && call.forward) this.forwardTo(call, hint);
        else if (from === 'replica' && elsewhere)
          this.finish(call, this.unlessApplied(call, answer));
        else this.pause(call, refusal); // no leader yet, or the one asked stepped down
        return;
      }
      case 'retry':
        call.attemptMayApply = false;
        this.pause(call, refusal);
        return;
      case 'outcomeUnknown':
        call.mayHaveApplied = true;
        call.attemptMayApply = false;
        if (from === 'replica') this.noteProposed(call);
        // Under its session a write may be asked again: here at once, through a leader
        // after a pause (it may have stepped down; the pause lets this node learn who leads).
        if (call.cmd.session !== 0 && ++call.unknowns <= this.options.unknownRetriesMax) {
          if (from === 'replica') this.submit(call);
          else this.pause(call, refusal);
          return;
        }
        this.finish(call, answer);
        return;
      case 'overloaded':
      case 'invalid':
      case 'conflict':
      case 'removed':
      case 'unsupported':
        call.attemptMayApply = false;
        this.finish(call, answer);
        return;
      default:
        unreachable(refusal, 'refusal');
    }
  }

  private noteProposed(call: Call): void {
    if (call.proposed) return;
    call.proposed = true;
    this.notice({ type: 'proposed' });
  }

  /**
   * Asks again after `retryPauseMs`, or ends the call if its deadline comes first, or at once
   * when it waits for a leader this node has gone without for `leaderlessPatienceMs`.
   */
  private pause(call: Call, why: Refusal): void {
    this.dropStage(call);
    const until = this.now + this.options.retryPauseMs;
    if (until >= call.deadline || (isNoLeader(why) && this.leaderlessTooLong())) {
      this.finish(call, this.lastWord(call, why));
      return;
    }
    call.stage = { at: 'paused', until, why };
  }

  private expire(call: Call): void {
    const why: Refusal =
      call.stage.at === 'paused'
        ? call.stage.why
        : { type: 'retry', reason: `no answer within ${this.options.callTimeoutMs} ms` };
    this.finish(call, this.lastWord(call, why));
  }

  /** What a call that runs out of time says: a write that may have applied says so. */
  /**
   * A refusal that says nothing applied, unless an earlier attempt may have: a leader that
   * proposed a forwarded write, saw it come back unknown and then stepped down must not
   * answer "not leader" (which promises nothing applied) for it.
   */
  private unlessApplied(call: Call, answer: CallAnswer): CallAnswer {
    if (answer.type !== 'refused' || call.kind !== 'write' || !call.mayHaveApplied) return answer;
    return refused(
      'outcomeUnknown',
      `an earlier attempt may have applied (${describeWhy(answer.refusal)})`,
    );
  }

  private lastWord(call: Call, why: Refusal): CallAnswer {
    if (call.kind === 'write' && (call.mayHaveApplied || call.attemptMayApply)) {
      return refused('outcomeUnknown', `no outcome in time (${describeWhy(why)})`);
    }
    return { type: 'refused', refusal: why };
  }

  private dropStage(call: Call): void {
    const stage = call.stage;
    if (stage.at === 'replica') this.owners.delete(stage.client);
    else if (stage.at === 'forwarded' && stage.applied !== undefined) {
      this.owners.delete(stage.applied);
    }
  }

  private finish(call: Call, answer: CallAnswer): void {
    this.dropStage(call);
    this.calls.delete(call.key);
    this.answer(call.asker, answer);
  }

  private answer(asker: Asker, answer: CallAnswer): void {
    if (asker.by === 'client') {
      this.emitReply(asker.client, { type: 'answer', id: asker.id, answer });
    } else if (this.late) {
      this.out.send(asker.peer, { type: 'fwdReply', id: asker.id, outcome: answer });
    } else {
      this.out.sendEarly(asker.peer, { type: 'fwdReply', id: asker.id, outcome: answer });
    }
  }

  private emitReply(client: ClientId, reply: RouterReply<T['reply']>): void {
    if (this.late) this.out.reply(client, reply);
    else this.out.replyEarly(client, reply);
  }

  private submitAdmin(admin: AdminCall<T['request']>): void {
    const id = this.nextClient++;
    this.owners.set(id, { of: 'admin', key: admin.key });
    admin.stage = { at: 'replica', client: id };
    this.replica.request(this.now, id, admin.req);
  }

  private endAdmin(admin: AdminCall<T['request']>, reply: T['reply'] | undefined): void {
    if (admin.stage.at === 'replica') this.owners.delete(admin.stage.client);
    this.admins.delete(admin.key);
    this.emitReply(admin.client, { type: 'replica', reply });
  }

  // -------------------------------------------------------------------------------------
  // Forwarded calls

  /** Serves a peer's forwarded call here, never further, and answers it with its outcome. */
  private serveForwarded(from: NodeId, raw: unknown): void {
    const checked = checkFwdCall(raw);
    if (!checked.ok) {
      this.notice({ type: 'dropped', from, why: `malformed forwarded call: ${checked.why}` });
      const id = (raw as { id?: unknown }).id;
      if (Number.isSafeInteger(id) && (id as number) >= 0) {
        this.answer({ by: 'peer', peer: from, id: id as number }, refused('invalid', checked.why));
      }
      return;
    }
    const call = checked.value;
    const asker: Asker = { by: 'peer', peer: from, id: call.id };
    const refusal = this.binding.admit?.(call.op);
    if (refusal !== undefined) {
      this.answer(asker, { type: 'refused', refusal });
      return;
    }
    this.startCall(asker, call, call.timeoutMs, false);
  }

  private onForwardReply(from: NodeId, raw: unknown): void {
    const checked = checkFwdReply(raw);
    if (!checked.ok) {
      this.notice({ type: 'dropped', from, why: `malformed forward reply: ${checked.why}` });
      return;
    }
    const reply = checked.value;
    const call = this.calls.get(reply.id);
    // Only the peer a call went to may end it; a late or duplicated reply finds nothing.
    if (call?.stage.at !== 'forwarded' || call.stage.to !== from) return;
    let outcome = reply.outcome;
    if (
      outcome.type === 'refused' &&
      outcome.refusal.type === 'outcomeUnknown' &&
      call.kind === 'read'
    ) {
      outcome = refused('retry', outcome.refusal.reason);
    }
    this.onAttemptAnswer(call, outcome, 'leader');
  }

  // -------------------------------------------------------------------------------------
  // Batches

  private translate(rd: Ready<T>): void {
    for (const p of rd.persist) this.out.persist(p);
    for (const m of rd.early) this.out.sendEarly(m.to, m.msg);
    for (const m of rd.messages) this.out.send(m.to, m.msg);
    for (const d of rd.deliver) this.out.deliver(d);
    for (const e of rd.events) this.out.emit(e);
    for (const r of rd.earlyReplies) {
      this.onReplicaReply(r.client, r.reply);
    }
    this.late = true;
    try {
      for (const r of rd.replies) this.onReplicaReply(r.client, r.reply);
    } finally {
      this.late = false;
    }
    if (rd.deliver.length > 0) this.afterDeliveries(rd.deliver);
  }

  // -------------------------------------------------------------------------------------
  // Removal

  private afterDeliveries(deliver: readonly T['deliver'][]): void {
    const removal = this.binding.removal;
    if (removal === undefined) return;
    const snapshot = deliver.some((d) => (d as { kind?: unknown }).kind === 'snapshot');
    const ids = snapshot ? removal.tombstones(this.replica) : removal.tombstonesIn(deliver);
    for (const id of ids) if (!this.removedPeers.has(id)) this.tombstoned.add(id);
    this.settleTombstones(true);
  }

  /**
   * Moves every tombstoned member whose configuration without it is committed to the
   * removed set; `tell` tells each so (and the host to forget it) as it moves.
   */
  private settleTombstones(tell: boolean): void {
    const removal = this.binding.removal;
    if (removal === undefined || this.tombstoned.size === 0) return;
    for (const id of [...this.tombstoned]) {
      if (!removal.goneFromConfig(this.replica, id)) continue;
      this.tombstoned.delete(id);
      if (id === this.id) {
        this.learnRemoved(this.id);
        continue;
      }
      this.removedPeers.add(id);
      // Only the leader that committed it tells the member at once: a node replaying its log
      // after a restart must not dial a member long gone (it is told when it speaks instead).
      const told = tell && this.leader() === this.id;
      if (told) this.tellRemoved(id);
      this.notice({ type: 'peerRemoved', id, told });
    }
  }

  private tellRemoved(to: NodeId): void {
    const last = this.toldAt.get(to);
    if (last !== undefined && this.now - last < this.options.removalNoticeIntervalMs) return;
    this.toldAt.set(to, this.now);
    this.out.sendEarly(to, { type: 'removed' });
  }

  /**
   * A peer's word is enough: it is authenticated by the cluster secret, and says so only once
   * it has committed this node's tombstone and a configuration without it.
   */
  private learnRemoved(toldBy: NodeId): void {
    if (this.removed) return;
    this.removed = true;
    this.notice({ type: 'removedFromCluster', toldBy });
  }

  /**
   * A learner that has had no leader for two checks in a row probes every peer it knows of
   * (its log may not even hold its own addition, if it stopped right after joining): if it
   * was removed while it was down, a peer answers so. A voter needs no probe: it campaigns.
   */
  private maybeProbe(): void {
    const removal = this.binding.removal;
    if (removal === undefined) return;
    if (this.nextProbeAt === Number.NEGATIVE_INFINITY) {
      this.nextProbeAt = this.now + this.options.probeIntervalMs;
      return;
    }
    if (this.now < this.nextProbeAt) return;
    this.nextProbeAt = this.now + this.options.probeIntervalMs;
    const orphaned = !this.removed && removal.orphaned(this.replica);
    const probe = orphaned && this.wasOrphaned;
    this.wasOrphaned = orphaned;
    if (!probe) return;
    const peers = new Set<NodeId>([...this.options.peers, ...removal.peers(this.replica)]);
    for (const id of peers) if (id !== this.id) this.out.sendEarly(id, { type: 'probe' });
  }

  private notice(notice: RouterNotice): void {
    this.out.emit({ type: 'router', notice });
  }

  private at(now: number): void {
    assert(!(now < this.now), `time went backwards: ${now} after ${this.now}`);
    this.now = now;
    this.observeLeader();
  }

  /** Keeps `leaderlessSince`; called as every input begins and before it ends. */
  private observeLeader(): void {
    if (this.leader() !== NO_NODE) this.leaderlessSince = undefined;
    else if (this.leaderlessSince === undefined) this.leaderlessSince = this.now;
  }

  private leaderlessTooLong(): boolean {
    const since = this.leaderlessSince;
    return since !== undefined && this.now - since >= this.options.leaderlessPatienceMs;
  }

  private endInput(): void {
    this.observeLeader();
    this.invariants();
  }

  private invariants(): void {
    for (const call of this.calls.values()) {
      const stage = call.stage;
      if (stage.at === 'replica') {
        const owner = this.owners.get(stage.client);
        assert(owner?.of === 'call' && owner.key === call.key, `call ${call.key} lost its owner`);
      } else if (stage.at === 'forwarded') {
        assert(call.forward, `call ${call.key} was forwarded though it came from a peer`);
        assert(stage.to !== this.id, `call ${call.key} forwarded to this node itself`);
      }
    }
    assert(this.calls.size <= this.options.callsMax, 'more calls in flight than callsMax');
  }
}

function isNoLeader(refusal: Refusal): boolean {
  return refusal.type === 'notLeader' && refusal.leader === NO_NODE;
}

function refused(
  type: Exclude<Refusal['type'], 'notLeader'>,
  reason: string,
): { type: 'refused'; refusal: Refusal } {
  return { type: 'refused', refusal: { type, reason } };
}

function describeWhy(why: Refusal): string {
  return why.type === 'notLeader'
    ? why.leader === NO_NODE
      ? 'no leader'
      : `node ${why.leader} leads`
    : why.reason;
}

/** The broken variant's invented answer: what a write that applied cleanly returns. */
function madeUpResult(op: KvOp): KvResult {
  switch (op.f) {
    case 'put':
      return { f: 'put', revision: 0, version: 1 };
    case 'delete':
      return { f: 'delete', deleted: true, revision: 0 };
    case 'cas':
    case 'casVersion':
      return { f: 'cas', ok: true, entry: null, revision: 0 };
    case 'get':
    case 'list':
      return { f: 'list', entries: [], more: false, revision: 0 };
    default:
      // The etcd operations: a clean answer of their shape matters less than a wrong one.
      return { f: 'leaseCheckpoint', revision: 0 };
  }
}
