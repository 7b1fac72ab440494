import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { assert } from '../kernel/assert.ts';
import type { Core, CoreTypes, Ready, Reply } from '../kernel/core.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { Transport } from '../runtime/transport/transport.ts';

/**
 * The node host: timers, sockets and fsync, nothing else, for any protocol core (a KV
 * replica behind its call router today; a membership agent or an ordered-broadcast ring
 * tomorrow). It follows the kernel's contract (kernel/core.ts): every input (a timer firing
 * at `deadline()`, a peer message, a request of the service on top) goes into the core,
 * then `pump` takes Ready batches one at a time: send the early messages, persist everything
 * (the service's storage fdatasyncs), then send messages, hand replies, events and
 * deliveries to the service, and advance. Inputs that arrive during an fsync land in the
 * next batch, which is how group commit happens across concurrent clients.
 *
 * It decides nothing: what to send, retry, refuse or forget is the core's.
 */
export interface NodeService<T extends CoreTypes> {
  /** Makes a batch's persist items durable, in order; resolves once every one is. */
  persist(items: readonly T['persist'][]): Promise<void>;
  /** Sends one message of the core; the default is `transport.send`. */
  send?(to: NodeId, msg: T['msg']): void;
  /** The batch is durable; before any of it is acted on (status that reads the persist). */
  durable?(rd: Ready<T>): void;
  /** An observer event of the core. */
  event(event: T['event']): void;
  /** Answers, early ones before the batch's persist, the rest after it. */
  replies(replies: readonly Reply<T['reply']>[]): void;
  /** The batch delivered something (after its messages and replies). */
  delivered?(rd: Ready<T>): void;
  /** The node can no longer run safely (a failed fsync). */
  failed?(err: unknown): void;
}

export interface NodeHostOptions<T extends CoreTypes> {
  readonly core: Core<T>;
  readonly transport: Transport<T['msg']>;
  readonly service: NodeService<T>;
  /** Tick once at start, before the first batch (a Multi-Paxos node arms its timers so). */
  readonly tickOnStart: boolean;
  readonly clock?: () => number;
  readonly logger?: Logger;
}

export class NodeHost<T extends CoreTypes> {
  readonly clock: () => number;
  readonly core: Core<T>;
  readonly transport: Transport<T['msg']>;
  private readonly service: NodeService<T>;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private pumping: Promise<void> | undefined;
  private kickedWhilePumping = false;
  private running = false;
  private failure: unknown;

  constructor(private readonly options: NodeHostOptions<T>) {
    this.core = options.core;
    this.transport = options.transport;
    this.service = options.service;
    this.clock = options.clock ?? (() => performance.now());
  }

  /** Whether inputs are taken: started, not stopped, storage not failed. */
  get accepting(): boolean {
    return this.running && this.failure === undefined;
  }

  /** Starts the peer listener and the timers. */
  async start(): Promise<void> {
    assert(!this.running, 'node started twice');
    this.transport.onMessage((from, msg) => {
      if (!this.running) return;
      this.core.receive(this.clock(), from, msg);
      this.kick();
    });
    await this.transport.start();
    this.running = true;
    if (this.options.tickOnStart) this.core.tick(this.clock());
    this.kick();
  }

  /** Finishes the batch being written, then closes the transport; false if not running. */
  async stop(): Promise<boolean> {
    if (!this.running) return false;
    this.running = false;
    this.clearTimer();
    await this.pumping;
    await this.transport.stop();
    return true;
  }

  /** Resolves once the batches pending now are carried out (after start: the log replayed). */
  async settled(): Promise<void> {
    while (this.pumping !== undefined) await this.pumping;
  }

  /** Hands the core an input (a request, a link report), then carries out what it caused. */
  input(give: (now: number) => void): void {
    give(this.clock());
    this.kick();
  }

  private kick(): void {
    if (!this.running) return;
    if (this.pumping !== undefined) {
      // The pump may have taken its last batch already (it ends a microtask or more after
      // that): an input now must start another, or its output would wait for the next timer.
      this.kickedWhilePumping = true;
      return;
    }
    this.kickedWhilePumping = false;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.kickedWhilePumping) this.kick();
      this.schedule();
    });
  }

  /** Takes Ready batches one at a time until there are none: persist, then act, then advance. */
  private async pump(): Promise<void> {
    try {
      for (let rd = this.core.ready(); rd !== undefined; rd = this.core.ready()) {
        // A leader's appends leave now, before its own write is even encoded, so its fsync
        // and its followers' run at once; answers that wait on nothing in this batch's write
        // (results of committed entries) go too.
        for (const m of rd.early) this.send(m.to, m.msg);
        if (rd.early.length > 0) this.transport.flush();
        if (rd.earlyReplies.length > 0) this.service.replies(rd.earlyReplies);
        if (rd.persist.length > 0) await this.service.persist(rd.persist);
        this.service.durable?.(rd);
        for (const m of rd.messages) this.send(m.to, m.msg);
        for (const event of rd.events) this.service.event(event);
        if (rd.replies.length > 0) this.service.replies(rd.replies);
        if (rd.deliver.length > 0) this.service.delivered?.(rd);
        this.core.advance();
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private send(to: NodeId, msg: T['msg']): void {
    if (this.service.send !== undefined) this.service.send(to, msg);
    else this.transport.send(to, msg);
  }

  private schedule(): void {
    if (!this.running) return;
    const due = this.core.deadline();
    // -Infinity is a real deadline ("tick me now"); +Infinity means no timer is set. No core
    // may answer NaN: it would compare false with everything and the node would never tick.
    assert(!Number.isNaN(due), 'a core reported a NaN deadline');
    if (due === Number.POSITIVE_INFINITY || due >= this.timerDue) return;
    clearTimeout(this.timer);
    this.timerDue = due;
    // Whole milliseconds: Node keeps one timer list per distinct duration.
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDue = Number.POSITIVE_INFINITY;
        if (!this.running) return;
        this.core.tick(this.clock());
        this.kick();
      },
      Math.max(1, Math.ceil(due - this.clock())),
    );
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.running = false;
    this.clearTimer();
    this.options.logger?.fatal({ err }, 'storage failed; the node cannot continue safely');
    this.service.failed?.(err);
  }
}
