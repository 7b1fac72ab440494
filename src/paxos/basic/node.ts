import { assert, unreachable } from '../../kernel/assert.ts';
import { type Core, OutputBuffer, type Ready } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import { assertNodeId } from '../../kernel/ids.ts';
import { ThresholdQuorum } from '../../kernel/quorum.ts';
import type { Rng } from '../../kernel/rng.ts';
import { checkBasicInvariants } from '../core-invariants.ts';
import { type AcceptorView, BasicAcceptor, type BasicUnsafeTestingFaults } from './acceptor.ts';
import { initialBasicDurable } from './durable.ts';
import { BasicLearner } from './learner.ts';
import { BasicProposer, type ProposerTiming, type ProposerView } from './proposer.ts';
import type { BasicDurable, BasicMsg, BasicPersist, BasicRequest, BasicTypes } from './types.ts';

export interface BasicPaxosConfig extends ProposerTiming {
  readonly id: NodeId;
  /** Every member is proposer, acceptor and learner; quorums are majorities of them. */
  readonly members: readonly NodeId[];
  /** Clients waiting at this node for the decision; more get a `busy` reply. */
  readonly pendingClientsMax: number;
  /** Test-only broken behaviours; see `BasicUnsafeTestingFaults`. */
  readonly unsafeTestingFaults?: BasicUnsafeTestingFaults;
}

export const BASIC_PAXOS_DEFAULTS = {
  phaseTimeoutMs: 200,
  backoffMinMs: 20,
  backoffMaxMs: 1_000,
  pendingClientsMax: 1_024,
} as const;

function validateConfig(config: BasicPaxosConfig): void {
  assertNodeId(config.id);
  for (const m of config.members) assertNodeId(m, 'member id');
  assert(config.members.includes(config.id), `node ${config.id} is not among the members`);
  assert(config.phaseTimeoutMs > 0, 'phaseTimeoutMs must be positive');
  assert(
    config.backoffMinMs > 0 && config.backoffMaxMs >= config.backoffMinMs,
    'need 0 < backoffMinMs <= backoffMaxMs',
  );
  assert(
    Number.isInteger(config.pendingClientsMax) && config.pendingClientsMax >= 1,
    'pendingClientsMax must be a positive integer',
  );
}

/**
 * Single-decree Paxos node: proposer, acceptor and learner in one Core. Messages a node
 * addresses to itself are handled in place (never sent), within the same batch, so the
 * durability rule still orders every persist before any message that depends on it.
 *
 * Restart: `new BasicPaxosNode(config, rng, durable)` where `durable` is the fold of every
 * persisted item with `applyBasicPersist`. A learned value is not delivered again.
 */
export class BasicPaxosNode<V> implements Core<BasicTypes<V>> {
  readonly id: NodeId;
  private readonly out = new OutputBuffer<BasicTypes<V>>();
  private readonly acceptor: BasicAcceptor<V>;
  private readonly proposer: BasicProposer<V>;
  private readonly learner: BasicLearner<V>;
  private readonly members: ReadonlySet<NodeId>;
  private readonly pendingClients: ClientId[] = [];
  private now = 0;

  constructor(
    private readonly config: BasicPaxosConfig,
    rng: Rng,
    durable: BasicDurable<V> = initialBasicDurable<V>(),
  ) {
    validateConfig(config);
    this.id = config.id;
    this.members = new Set(config.members);
    const quorum = ThresholdQuorum.majorityOf(config.members);
    const faults = config.unsafeTestingFaults ?? {};
    this.acceptor = new BasicAcceptor(durable, faults);
    this.learner = new BasicLearner(quorum, durable.learned);
    const sink = {
      persist: (item: BasicPersist<V>) => this.out.persist(item),
      broadcast: (msg: BasicMsg<V>) => this.broadcast(msg),
      emit: (event: BasicTypes<V>['event']) => this.out.emit(event),
    };
    const ignore = faults.ignorePromisedValues === true;
    this.proposer = new BasicProposer(
      this.id,
      quorum,
      config,
      rng,
      sink,
      durable.lastProposalId,
      ignore,
    );
    if (durable.learned !== null) this.proposer.finish();
  }

  acceptorView(): AcceptorView<V> {
    return this.acceptor.view();
  }

  proposerView(): ProposerView<V> {
    return this.proposer.view();
  }

  learned(): { readonly value: V } | null {
    return this.learner.learned();
  }

  tick(now: number): void {
    this.now = Math.max(this.now, now);
    this.proposer.tick(this.now);
    this.checkInvariants();
  }

  receive(now: number, from: NodeId, msg: BasicMsg<V>): void {
    this.now = Math.max(this.now, now);
    if (!this.members.has(from)) {
      this.out.emit({ type: 'dropped', from, reason: 'unknownPeer' });
    } else {
      this.handle(from, msg);
    }
    this.checkInvariants();
  }

  request(now: number, client: ClientId, req: BasicRequest<V>): void {
    this.now = Math.max(this.now, now);
    this.answer(client, req);
    this.checkInvariants();
  }

  private answer(client: ClientId, req: BasicRequest<V>): void {
    const learned = this.learner.learned();
    if (learned !== null) {
      this.out.reply(client, { type: 'chosen', value: learned.value });
      return;
    }
    if (this.pendingClients.length >= this.config.pendingClientsMax) {
      this.out.reply(client, { type: 'busy' });
      return;
    }
    this.pendingClients.push(client);
    this.proposer.propose(this.now, req.value);
  }

  deadline(): number {
    return this.proposer.deadline();
  }

  /** Asserts the node's local invariants (../core-invariants.ts); every input ends here. */
  private checkInvariants(): void {
    checkBasicInvariants({
      id: this.id,
      acceptor: this.acceptor.view(),
      proposer: this.proposer.view(),
      learned: this.learner.learned() !== null,
      pendingClients: this.pendingClients.length,
      pendingClientsMax: this.config.pendingClientsMax,
      acceptsBelowPromise: this.config.unsafeTestingFaults?.acceptBelowPromise === true,
    });
  }

  ready(): Ready<BasicTypes<V>> | undefined {
    return this.out.ready();
  }

  advance(): void {
    this.out.advance();
  }

  private handle(from: NodeId, msg: BasicMsg<V>): void {
    switch (msg.type) {
      case 'prepare':
        this.handlePrepare(from, msg);
        break;
      case 'promise':
        this.proposer.onPromise(this.now, from, msg.id, msg.accepted);
        break;
      case 'accept':
        this.handleAccept(from, msg);
        break;
      case 'accepted':
        if (this.learner.onAccepted(from, msg.id, msg.value)) this.onLearned(msg.value);
        break;
      case 'nack':
        this.proposer.onNack(this.now, msg.id, msg.promised);
        break;
      case 'decided':
        if (this.learner.learn(msg.value)) this.onLearned(msg.value);
        break;
      default:
        unreachable(msg, 'basic paxos message');
    }
  }

  private handlePrepare(from: NodeId, msg: Extract<BasicMsg<V>, { type: 'prepare' }>): void {
    const { outcome, persist } = this.acceptor.prepare(msg.id);
    if (persist !== null) this.out.persist(persist);
    if (outcome.type === 'promise') {
      this.send(from, { type: 'promise', id: msg.id, accepted: outcome.accepted });
    } else {
      this.send(from, { type: 'nack', id: msg.id, promised: outcome.promised });
    }
    this.tellDecided(from);
  }

  private handleAccept(from: NodeId, msg: Extract<BasicMsg<V>, { type: 'accept' }>): void {
    const { outcome, persist } = this.acceptor.accept(msg.id, msg.value);
    if (persist !== null) this.out.persist(persist);
    if (outcome.type === 'accepted') {
      this.broadcast({ type: 'accepted', id: msg.id, value: msg.value });
    } else {
      this.send(from, { type: 'nack', id: msg.id, promised: outcome.promised });
    }
    this.tellDecided(from);
  }

  /** A proposer still working on a decided decree learns the outcome without more rounds. */
  private tellDecided(to: NodeId): void {
    const learned = this.learner.learned();
    if (learned !== null && to !== this.id)
      this.send(to, { type: 'decided', value: learned.value });
  }

  private onLearned(value: V): void {
    this.proposer.finish();
    this.out.persist({ type: 'learned', value });
    this.out.deliver({ value });
    this.out.emit({ type: 'learned' });
    for (const client of this.pendingClients) this.out.reply(client, { type: 'chosen', value });
    this.pendingClients.length = 0;
  }

  private send(to: NodeId, msg: BasicMsg<V>): void {
    if (to === this.id) this.handle(this.id, msg);
    else this.out.send(to, msg);
  }

  private broadcast(msg: BasicMsg<V>): void {
    for (const member of this.config.members) this.send(member, msg);
  }
}
