import { assert, unreachable } from '../kernel/assert.ts';
import { type Core, OutputBuffer, type Ready } from '../kernel/core.ts';
import { type ClientId, NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { KvOp } from '../kv/machine.ts';
import { defaultLessorOptions, isLessorRead, Lessor } from './lessor.ts';
import { classifyReplicaReply, type Refusal } from './refusal.ts';
import {
  type Asker,
  type Call,
  type CallBody,
  changes,
  dueAt,
  isNoLeader,
  lastWord,
  madeUpResult,
  mayAskAgain,
  refused,
  unlessApplied,
} from './router-calls.ts';
import { memberStepOutcome, memberStepRequest } from './router-members.ts';
import {
  type CallOutcome,
  checkFwdCall,
  checkFwdReply,
  type FwdCall,
  type RouterMsg,
  routerMsgKinds,
} from './router-msgs.ts';
import { Removals } from './router-removal.ts';
import {
  defaultRouterOptions,
  type MemberStep,
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
 * - A client call (a KV write, a linearizable read, a membership change) on a follower is
 *   forwarded to the leader over the peer protocol (router-msgs.ts) and served there with
 *   forwarding off: one hop at most, so nodes that disagree about who leads cannot bounce a
 *   call between them. A forwarded write also asks the follower's own replica for its result
 *   once applied (Raft's commit hints make that a message earlier than the leader's answer).
 *   With no link to the leader (the host reports links going down and up), the call is
 *   refused at once as not-leader, naming the leader, so the client goes there itself.
 * - A refusal that passes (no leader yet, a leadership transfer) is asked again after
 *   `retryPauseMs`; a write whose outcome came back unknown is asked again under its session
 *   (exactly-once), a membership change as it is (idempotent), at most `unknownRetriesMax`
 *   times; every call ends by its deadline. Pauses and deadlines are times compared with
 *   `now` and reported through `deadline()`, never timers.
 * - A membership change is carried out on the leader in the steps the binding plans
 *   (router-members.ts): for Raft, a removal's tombstone commits before the change.
 * - Refusals are one typed vocabulary (refusal.ts), crossing the peer protocol as data.
 * - With removal rules (Raft), removal bookkeeping (router-removal.ts).
 *
 * Batches: the replica's batch passes through (persist, messages, deliveries, events), and
 * the router's answers to results the replica gave in its `replies` go out in the same batch
 * after the persist; answers to `earlyReplies`, refusals and forwarded messages depend on
 * nothing unpersisted and go early (kernel `Ready`, rules 3 and 4).
 */

export type {
  CallRequest,
  MemberPlan,
  MemberRequest,
  MemberStep,
  MembershipRules,
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

/** Who a replica client id (the router's own) answers to. */
type Owner =
  | { readonly of: 'call'; readonly key: number }
  | { readonly of: 'applied'; readonly key: number }
  | { readonly of: 'host'; readonly client: ClientId }
  /** A revoke the lessor proposed for an expired lease. */
  | { readonly of: 'lessor'; readonly lease: number };

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
  private readonly owners = new Map<ClientId, Owner>();
  private nextKey = 1;
  private nextClient: ClientId = 1;
  /** Peers whose link the host reported down (and not up since). */
  private readonly linksDown = new Set<NodeId>();
  private readonly removals: Removals<R> | undefined;
  /** Since when this node has known no leader (undefined while it knows one). */
  private leaderlessSince: number | undefined;
  /** Who decides that leases expired: active while this node leads (lessor.ts). */
  private readonly lessor: Lessor;

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
    const lessor = options.lessor ?? defaultLessorOptions;
    this.lessor = new Lessor(
      options.unsafeTestingFaults?.lessorKeepsDeadlines === true
        ? { ...lessor, unsafeTestingFaults: { keepDeadlinesOnPromote: true } }
        : lessor,
    );
    this.removals =
      binding.removal === undefined
        ? undefined
        : new Removals<R>(
            {
              id: this.id,
              replica,
              now: () => this.now,
              leader: () => this.leader(),
              sendEarly: (to, msg) => this.out.sendEarly(to, msg),
              notice: (notice) => this.notice(notice),
            },
            binding.removal,
            options,
          );
  }

  /** Who leads, as this node knows it (NO_NODE when none). */
  leader(): NodeId {
    return this.binding.leader(this.replica);
  }

  /** Calls in flight, own and forwarded. */
  pendingCalls(): number {
    return this.calls.size;
  }

  /** Milliseconds left of lease `id` by this node's lessor (undefined off the leader). */
  leaseRemainingMs(id: number): number | undefined {
    return this.lessor.remainingMs(this.now, id);
  }

  /** Members whose removal this node has committed. */
  removedMembers(): ReadonlySet<NodeId> {
    return this.removals?.members() ?? new Set();
  }

  // -------------------------------------------------------------------------------------
  // Inputs

  tick(now: number): void {
    this.at(now);
    this.replica.tick(now);
    for (const call of [...this.calls.values()]) {
      if (call.deadlineAt <= now) this.expire(call);
      else if (call.stage.at === 'paused' && call.stage.resumeAt <= now) this.route(call);
    }
    this.removals?.maybeProbe();
    this.endInput();
  }

  receive(now: number, from: NodeId, msg: RouterTypes<T>['msg']): void {
    this.at(now);
    const type = (msg as { type?: unknown } | null)?.type;
    if (type === 'removed') {
      this.removals?.learnRemoved(from);
    } else if (this.removals?.isRemoved(from) === true) {
      this.removals.tell(from);
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
        const id = this.nextClient++;
        this.owners.set(id, { of: 'host', client });
        this.replica.request(now, id, req.req);
        break;
      }
      case 'call': {
        const asker: Asker = { by: 'client', client, id: req.id };
        const refusal = this.binding.admit?.(req.op);
        const body: CallBody = {
          kind: req.kind,
          cmd: { session: req.session, seq: req.seq, op: req.op },
        };
        if (refusal === undefined) this.startCall(asker, body, req.timeoutMs, req.forward);
        else this.answer(asker, { type: 'refused', refusal });
        break;
      }
      case 'member': {
        const asker: Asker = { by: 'client', client, id: req.id };
        const body: CallBody = { kind: 'member', change: req.change };
        this.startCall(asker, body, req.timeoutMs, req.forward);
        break;
      }
      default:
        unreachable(req, 'router request');
    }
    this.endInput();
  }

  /**
   * The host's word on the link to `peer`: down, calls forwarded to it end now rather than at
   * their deadline (so clients move on while a new leader is elected) and no call is
   * forwarded to it until it is up again.
   */
  linkChanged(now: number, peer: NodeId, up: boolean): void {
    this.at(now);
    if (up) {
      this.linksDown.delete(peer);
    } else {
      this.linksDown.add(peer);
      for (const call of [...this.calls.values()]) {
        if (call.stage.at !== 'forwarded' || call.stage.to !== peer) continue;
        const reason = `lost the connection to leader ${peer}`;
        if (changes(call)) this.finish(call, refused('outcomeUnknown', reason));
        else this.pause(call, { type: 'retry', reason });
      }
    }
    this.endInput();
  }

  /**
   * The host could not hand a forwarded call to `peer` (no such peer, or the message is too
   * large): the call whose `fwdCall` just left for it is refused with `peer` as the leader
   * hint, so the client can reach it another way. Nothing was sent, so nothing applied.
   */
  unsent(now: number, peer: NodeId, msg: RouterMsg): void {
    this.at(now);
    if (msg.type !== 'fwdCall') return;
    const call = this.calls.get(msg.id);
    const stage = call?.stage;
    if (call === undefined || stage?.at !== 'forwarded') return;
    if (stage.to !== peer || stage.attempt !== msg.attempt) return;
    call.attemptMayApply = false;
    this.finish(call, unlessApplied(call, { type: 'refused', refusal: notLeader(peer) }));
    this.endInput();
  }

  deadline(): number {
    let due = this.replica.deadline();
    const probe = this.removals?.probeDueAt() ?? Number.POSITIVE_INFINITY;
    if (probe < due) due = probe;
    const lessor =
      this.binding.leases === undefined ? Number.POSITIVE_INFINITY : this.lessor.deadline();
    if (lessor < due) due = lessor;
    for (const c of this.calls.values()) due = Math.min(due, dueAt(c));
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

  private startCall(asker: Asker, body: CallBody, timeoutMs: number, forward: boolean): void {
    const refuse = (type: 'removed' | 'unsupported' | 'overloaded', reason: string) =>
      this.answer(asker, refused(type, reason), body.kind === 'member');
    if (this.removals?.removed === true) {
      refuse('removed', `node ${this.id} was removed from the cluster`);
      return;
    }
    if (body.kind === 'member' && this.binding.membership === undefined) {
      const what = `membership changes are not implemented for ${this.binding.name}`;
      refuse('unsupported', `${what}; the members are fixed at start`);
      return;
    }
    if (this.calls.size >= this.options.callsMax) {
      refuse('overloaded', `${this.calls.size} calls in flight`);
      return;
    }
    const call: Call = {
      key: this.nextKey++,
      body,
      deadlineAt: this.now + Math.max(1, Math.min(timeoutMs, this.options.callTimeoutMs)),
      forward,
      asker,
      stage: { at: 'paused', resumeAt: this.now, why: { type: 'retry', reason: 'not started' } },
      unknowns: 0,
      forwards: 0,
      mayHaveApplied: false,
      attemptMayApply: false,
      proposed: false,
    };
    this.calls.set(call.key, call);
    this.route(call);
  }

  /** Forwards the call to the leader this node knows, or serves it here. */
  private route(call: Call): void {
    const leader = this.leader();
    if (!call.forward || leader === NO_NODE || leader === this.id) this.submit(call);
    else this.toLeader(call, leader);
  }

  /** Forwards the call to `leader`, or refuses it naming `leader` when no link reaches it. */
  private toLeader(call: Call, leader: NodeId): void {
    if (this.linksDown.has(leader)) {
      call.attemptMayApply = false;
      this.finish(call, unlessApplied(call, { type: 'refused', refusal: notLeader(leader) }));
    } else {
      this.forwardTo(call, leader);
    }
  }

  private submit(call: Call): void {
    this.dropStage(call);
    if (call.body.kind === 'member') {
      this.startMember(call);
      return;
    }
    const client = this.nextClient++;
    this.owners.set(client, { of: 'call', key: call.key });
    call.stage = { at: 'replica', client };
    call.attemptMayApply = call.body.kind === 'write';
    const origin = call.asker.by === 'peer' ? call.asker.peer : undefined;
    this.replica.request(this.now, client, this.binding.kvRequest(client, call.body.cmd, origin));
  }

  /** Plans a membership change here (a leader's work) and takes its first step. */
  private startMember(call: Call): void {
    const rules = this.binding.membership;
    assert(rules !== undefined && call.body.kind === 'member', 'a member call without rules');
    const leader = this.leader();
    if (leader !== this.id) {
      this.onAttemptAnswer(call, { type: 'refused', refusal: notLeader(leader) }, 'replica');
      return;
    }
    const plan = rules.plan(this.replica, call.body.change);
    if (plan.type === 'steps' && plan.steps.length > 0) this.memberStep(call, plan.steps, 0);
    else if (plan.type === 'refused') this.onAttemptAnswer(call, plan, 'replica');
    else this.finish(call, { type: 'done' });
  }

  private memberStep(call: Call, steps: readonly MemberStep[], step: number): void {
    const rules = this.binding.membership;
    const s = steps[step];
    assert(rules !== undefined && call.body.kind === 'member' && s !== undefined, 'no step');
    const client = this.nextClient++;
    this.owners.set(client, { of: 'call', key: call.key });
    call.stage = { at: 'member', client, steps, step };
    call.attemptMayApply = s.type !== 'refuseIfSet';
    this.replica.request(
      this.now,
      client,
      memberStepRequest(this.binding, rules, client, s, call.body.change),
    );
  }

  private forwardTo(call: Call, leader: NodeId): void {
    assert(call.forward && leader !== this.id && leader !== NO_NODE, 'forwarding a local call');
    this.dropStage(call);
    const body = call.body;
    const sessionless =
      this.options.unsafeTestingFaults?.reforwardWritesWithoutSession === true &&
      body.kind === 'write' &&
      call.forwards > 0;
    call.forwards++;
    const id = call.key;
    const attempt = call.forwards;
    const timeoutMs = Math.max(1, Math.ceil(call.deadlineAt - this.now));
    // Literals, not a spread of a common head: V8 (Node 20) takes a slow path for every
    // property written after a spread, about half a microsecond each (see router-msgs.ts).
    const msg: FwdCall =
      body.kind === 'member'
        ? { type: 'fwdCall', id, attempt, timeoutMs, kind: 'member', change: body.change }
        : {
            type: 'fwdCall',
            id,
            attempt,
            timeoutMs,
            kind: body.kind,
            session: sessionless ? 0 : body.cmd.session,
            seq: sessionless ? 0 : body.cmd.seq,
            op: body.cmd.op,
          };
    this.out.sendEarly(leader, msg);
    call.attemptMayApply = changes(call);
    let applied: ClientId | undefined;
    const build = this.binding.appliedRequest;
    if (body.kind === 'write' && body.cmd.session !== 0 && build !== undefined) {
      applied = this.nextClient++;
      this.owners.set(applied, { of: 'applied', key: call.key });
      this.replica.request(this.now, applied, build(applied, body.cmd.session, body.cmd.seq));
    }
    call.stage = { at: 'forwarded', to: leader, attempt: call.forwards, applied };
    if (this.options.unsafeTestingFaults?.answerForwardedWritesEarly && body.kind === 'write') {
      this.finish(call, { type: 'result', result: madeUpResult(body.cmd.op) });
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
      case 'lessor':
        this.lessor.revokeEnded(this.now, owner.lease);
        return;
      case 'applied': {
        const call = this.calls.get(owner.key);
        if (call?.stage.at !== 'forwarded' || call.stage.applied !== client) return;
        if (reply.type === 'result') this.finish(call, { type: 'result', result: reply.result });
        return;
      }
      case 'call': {
        const call = this.calls.get(owner.key);
        const stage = call?.stage;
        if (call === undefined || stage === undefined) return;
        if (stage.at === 'replica' && stage.client === client && call.body.kind !== 'member') {
          const answer = classifyReplicaReply(reply, call.body.kind);
          this.onAttemptAnswer(call, this.leaseAnswer(call.body.cmd.op, answer), 'replica');
        } else if (stage.at === 'member' && stage.client === client) {
          this.onMemberStepReply(call, stage.steps, stage.step, reply);
        }
        return;
      }
      default:
        unreachable(owner, 'owner');
    }
  }

  private onMemberStepReply(
    call: Call,
    steps: readonly MemberStep[],
    step: number,
    reply: T['reply'],
  ): void {
    const rules = this.binding.membership;
    const s = steps[step];
    assert(rules !== undefined && call.body.kind === 'member' && s !== undefined, 'no step');
    const next = memberStepOutcome(rules, this.replica, s, call.body.change, reply);
    if (next === 'next' && step + 1 < steps.length) this.memberStep(call, steps, step + 1);
    else if (next === 'next') this.finish(call, { type: 'done' });
    else this.onAttemptAnswer(call, next, 'replica');
  }

  /** The answer to one attempt, from this node's replica or from the leader it forwarded to. */
  private onAttemptAnswer(call: Call, answer: CallOutcome, from: 'replica' | 'leader'): void {
    if (answer.type !== 'refused') {
      if (from === 'replica' && call.body.kind === 'write') this.noteProposed(call);
      this.finish(call, answer);
      return;
    }
    const refusal = answer.refusal;
    switch (refusal.type) {
      case 'notLeader': {
        call.attemptMayApply = false;
        const hint = refusal.leader;
        const elsewhere = hint !== NO_NODE && hint !== this.id;
        if (from === 'replica' && elsewhere && call.forward) this.toLeader(call, hint);
        else if (from === 'replica' && elsewhere) this.finish(call, unlessApplied(call, answer));
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
        if (from === 'replica' && call.body.kind === 'write') this.noteProposed(call);
        // Asked again here at once, or through a leader after a pause (it may have stepped
        // down; the pause lets this node learn who leads).
        if (mayAskAgain(call) && ++call.unknowns <= this.options.unknownRetriesMax) {
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

  /** A keep-alive or time-to-live the replica answered, as the lessor serves it (lessor.ts). */
  private leaseAnswer(op: KvOp, answer: CallOutcome): CallOutcome {
    const leases = this.binding.leases;
    if (answer.type !== 'result' || leases === undefined || !isLessorRead(op)) return answer;
    const leads = this.leader() === this.id;
    const result = this.lessor.serve(this.now, leads, leases(this.replica), answer.result);
    if (result === undefined) return { type: 'refused', refusal: notLeader(this.leader()) };
    return { type: 'result', result };
  }

  /**
   * The lessor follows this node's leadership and the machine's leases, and proposes the
   * revokes of leases that expired on its clock (sessionless: a second revoke of a lease
   * finds it gone).
   */
  private maintainLeases(): void {
    const leases = this.binding.leases;
    if (leases === undefined) return;
    const source = leases(this.replica);
    const leads = this.leader() === this.id;
    if (leads && !this.lessor.isPrimary) this.lessor.promote(this.now, source);
    else if (!leads && this.lessor.isPrimary) this.lessor.demote();
    this.lessor.sync(this.now, source);
    for (const id of this.lessor.takeExpired(this.now)) {
      const client = this.nextClient++;
      this.owners.set(client, { of: 'lessor', lease: id });
      const cmd = { session: 0, seq: 0, op: { f: 'leaseRevoke', id } } as const;
      this.replica.request(this.now, client, this.binding.kvRequest(client, cmd, undefined));
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
    const resumeAt = this.now + this.options.retryPauseMs;
    if (resumeAt >= call.deadlineAt || (isNoLeader(why) && this.leaderlessTooLong())) {
      this.finish(call, lastWord(call, why));
      return;
    }
    call.stage = { at: 'paused', resumeAt, why };
  }

  private expire(call: Call): void {
    const why: Refusal =
      call.stage.at === 'paused'
        ? call.stage.why
        : { type: 'retry', reason: `no answer within ${this.options.callTimeoutMs} ms` };
    this.finish(call, lastWord(call, why));
  }

  private dropStage(call: Call): void {
    const stage = call.stage;
    if (stage.at === 'replica' || stage.at === 'member') this.owners.delete(stage.client);
    else if (stage.at === 'forwarded' && stage.applied !== undefined) {
      this.owners.delete(stage.applied);
    }
  }

  private finish(call: Call, answer: CallOutcome): void {
    this.dropStage(call);
    this.calls.delete(call.key);
    this.answer(call.asker, answer, call.body.kind === 'member');
  }

  private answer(asker: Asker, outcome: CallOutcome, member = false): void {
    if (asker.by === 'peer') {
      const msg = { type: 'fwdReply', id: asker.id, attempt: asker.attempt, outcome } as const;
      if (this.late) this.out.send(asker.peer, msg);
      else this.out.sendEarly(asker.peer, msg);
    } else if (member) {
      assert(outcome.type !== 'result', 'a membership change answered with a KV result');
      this.emitReply(asker.client, { type: 'member', id: asker.id, outcome });
    } else {
      assert(outcome.type !== 'done', "a KV call answered 'done'");
      this.emitReply(asker.client, { type: 'answer', id: asker.id, answer: outcome });
    }
  }

  private emitReply(client: ClientId, reply: RouterReply<T['reply']>): void {
    if (this.late) this.out.reply(client, reply);
    else this.out.replyEarly(client, reply);
  }

  // -------------------------------------------------------------------------------------
  // Forwarded calls

  /** Serves a peer's forwarded call here, never further, and answers it with its outcome. */
  private serveForwarded(from: NodeId, raw: unknown): void {
    const checked = checkFwdCall(raw);
    if (!checked.ok) {
      this.notice({ type: 'dropped', from, why: `malformed forwarded call: ${checked.why}` });
      const { id, attempt } = raw as { id?: unknown; attempt?: unknown };
      if (isCount(id) && isCount(attempt)) {
        this.answer({ by: 'peer', peer: from, id, attempt }, refused('invalid', checked.why));
      }
      return;
    }
    const call = checked.value;
    const asker: Asker = { by: 'peer', peer: from, id: call.id, attempt: call.attempt };
    if (call.kind === 'member') {
      this.startCall(asker, { kind: 'member', change: call.change }, call.timeoutMs, false);
      return;
    }
    const refusal = this.binding.admit?.(call.op);
    if (refusal !== undefined) {
      this.answer(asker, { type: 'refused', refusal });
      return;
    }
    const cmd = { session: call.session, seq: call.seq, op: call.op };
    this.startCall(asker, { kind: call.kind, cmd }, call.timeoutMs, false);
  }

  private onForwardReply(from: NodeId, raw: unknown): void {
    const checked = checkFwdReply(raw);
    if (!checked.ok) {
      this.notice({ type: 'dropped', from, why: `malformed forward reply: ${checked.why}` });
      return;
    }
    const reply = checked.value;
    const call = this.calls.get(reply.id);
    const stage = call?.stage;
    // Only the attempt in flight may end a call: a late or duplicated reply (to an earlier
    // forward, or from another peer) finds nothing.
    if (call === undefined || stage?.at !== 'forwarded') return;
    if (stage.to !== from || stage.attempt !== reply.attempt) return;
    let outcome = reply.outcome;
    if (outcome.type === 'refused' && outcome.refusal.type === 'outcomeUnknown' && !changes(call)) {
      outcome = refused('retry', outcome.refusal.reason);
    }
    if (outcome.type === 'done' && call.body.kind !== 'member') {
      outcome = refused('invalid', "the leader answered a KV call 'done'");
    } else if (outcome.type === 'result' && call.body.kind === 'member') {
      outcome = refused('invalid', 'the leader answered a membership change with a KV result');
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
    if (rd.deliver.length > 0) this.removals?.afterDeliveries(rd.deliver);
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
    this.maintainLeases();
    this.invariants();
  }

  private invariants(): void {
    for (const call of this.calls.values()) {
      const stage = call.stage;
      if (stage.at === 'replica' || stage.at === 'member') {
        const owner = this.owners.get(stage.client);
        assert(owner?.of === 'call' && owner.key === call.key, `call ${call.key} lost its owner`);
      } else if (stage.at === 'forwarded') {
        assert(call.forward, `call ${call.key} was forwarded though it came from a peer`);
        assert(stage.to !== this.id, `call ${call.key} forwarded to this node itself`);
        assert(stage.attempt === call.forwards, `call ${call.key} waits on an old attempt`);
      }
    }
    assert(this.calls.size <= this.options.callsMax, 'more calls in flight than callsMax');
  }
}

function notLeader(leader: NodeId): Refusal {
  return { type: 'notLeader', leader };
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
