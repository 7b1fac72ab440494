import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { KvChange, KvEntry } from '../../kv/machine.ts';
import type { WatchHandle } from '../engine.ts';
import { type EtcdContext, headerOf } from './context.ts';
import { EtcdError, toEtcdError } from './errors.ts';
import { inSpan, type Span, spanOf, wireBytesOf } from './keys.ts';
import { readSpan } from './kv.ts';
import {
  EventType,
  type KeyValue,
  type WatchCreateRequest,
  type WatchEvent,
  WatchFilter,
  type WatchRequest,
  type WatchResponse,
} from './types.ts';

export interface WatchLimits {
  /** Watches one stream may hold at once. */
  readonly watchesPerStreamMax: number;
  /**
   * Events a watcher may have written while the stream's send buffer stays full; past it the
   * watcher is cancelled with a reason (and the revision to resume from), never left with a gap.
   */
  readonly backlogMax: number;
  /** How often a watch created with progress_notify hears the revision when idle. */
  readonly progressNotifyMs: number;
  /** Keys whose version a watch tracks (for exact versions and prev_kv); past it, it stops. */
  readonly trackedKeysMax: number;
}

/** What a watch knows of a key between events; createRevision 0 when it does not know it. */
interface Known {
  readonly value: string;
  readonly version: number;
  readonly modRevision: number;
  readonly createRevision: number;
}

/** clientv3's InvalidWatchID: the id of a progress answer meant for the whole stream. */
const STREAM_WATCH_ID = -1;

interface Watcher {
  readonly id: number;
  readonly span: Span;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly progressNotify: boolean;
  handle: WatchHandle | undefined;
  /** The newest revision of the feed this watcher has been given (sent or filtered out). */
  seen: number;
  pending: WatchEvent[];
  /** Events written since the send buffer last drained. */
  backlog: number;
  /** Whether events were sent since the last progress notice. */
  active: boolean;
  readonly prevKv: boolean;
  /**
   * The keys of the span as this watch knows them. With `tracksAll` (a watch from now, whose
   * span was read when it began) a key missing here is absent; without it, missing is
   * unknown and null is known absent (learnt from a delete), after which versions are exact.
   */
  readonly known: Map<string, Known | null>;
  tracksAll: boolean;
}

type Call = ServerDuplexStream<WatchRequest, WatchResponse>;

/**
 * One Watch stream: many watches, each over the engine's change feed. Events go out in
 * revision order, batched per turn of the event loop; a cancel or the end of the stream
 * cancels the feeds.
 */
export class WatchSession {
  private readonly watchers = new Map<number, Watcher>();
  private nextId = 0;
  private congested = false;
  private closed = false;
  private flushQueued = false;
  private readonly progressTimer: NodeJS.Timeout;

  constructor(
    private readonly ctx: EtcdContext,
    private readonly call: Call,
    private readonly limits: WatchLimits,
  ) {
    call.on('data', (req: WatchRequest) => this.onRequest(req));
    call.on('end', () => this.close(true));
    call.on('error', () => this.close(false));
    call.on('cancelled', () => this.close(false));
    call.on('drain', () => {
      this.congested = false;
      for (const w of this.watchers.values()) w.backlog = 0;
    });
    this.progressTimer = setInterval(() => this.notifyProgress(), limits.progressNotifyMs);
    this.progressTimer.unref();
  }

  private onRequest(req: WatchRequest): void {
    if (this.closed) return;
    try {
      if (req.request_union === 'create_request' && req.create_request) {
        this.create(req.create_request);
      } else if (req.request_union === 'cancel_request' && req.cancel_request) {
        this.cancel(req.cancel_request.watch_id, '');
      } else if (req.request_union === 'progress_request') {
        this.flush();
        this.send({ watch_id: STREAM_WATCH_ID, revision: this.progressRevision() });
      }
    } catch (err) {
      const e = toEtcdError(err, 'read');
      this.call.emit('error', Object.assign(new Error(e.message), e.toStatus()));
    }
  }

  private create(req: WatchCreateRequest): void {
    const id = req.watch_id !== 0 ? req.watch_id : this.freeId();
    const checked = this.checkCreate(req, id);
    if (typeof checked === 'string') {
      this.send({ watch_id: id, created: true, canceled: true, cancel_reason: checked });
      return;
    }
    const span = checked;
    const watcher: Watcher = {
      id,
      span,
      noPut: req.filters.includes(WatchFilter.noPut),
      noDelete: req.filters.includes(WatchFilter.noDelete),
      progressNotify: req.progress_notify,
      handle: undefined,
      seen: 0,
      pending: [],
      backlog: 0,
      active: false,
      prevKv: req.prev_kv,
      known: new Map(),
      tracksAll: false,
    };
    this.watchers.set(id, watcher);
    if (req.start_revision > 0) {
      this.begin(watcher, req.start_revision - 1);
      return;
    }
    // From now: read the span first, so that events carry exact versions (and prev_kv). The
    // read is linearizable, so "now" is no earlier than any write already acknowledged
    // anywhere (a lagging member would otherwise replay those as new).
    readSpan(this.ctx, span, 'linearizable').then(
      (read) => {
        if (this.closed || this.watchers.get(id) !== watcher) return;
        for (const e of read.entries) watcher.known.set(e.key, knownOf(e));
        watcher.tracksAll = true;
        this.begin(watcher, read.revision);
      },
      (err: unknown) => {
        if (this.closed || this.watchers.get(id) !== watcher) return;
        if (!watcher.prevKv) return this.begin(watcher, this.ctx.engine.status().revision);
        this.watchers.delete(id);
        const reason = err instanceof EtcdError ? err.message : String(err);
        this.send({ watch_id: id, created: true, canceled: true, cancel_reason: reason });
      },
    );
  }

  /** Starts the watch's feed after revision `from` and says it is created. */
  private begin(watcher: Watcher, from: number): void {
    const id = watcher.id;
    watcher.seen = from;
    this.send({ watch_id: id, created: true, revision: this.ctx.engine.status().revision });
    const handle = this.ctx.engine.watch(from, (change) => this.onChange(watcher, change));
    if (handle === 'compacted') {
      this.watchers.delete(id);
      this.send({
        watch_id: id,
        canceled: true,
        compact_revision: this.oldestWatchable(from),
        cancel_reason: 'etcdserver: mvcc: required revision has been compacted',
      });
      return;
    }
    if (this.watchers.get(id) === watcher) watcher.handle = handle;
    else handle.cancel(); // cancelled from inside its own first delivery
  }

  /** The watch's span, or why it is refused (etcd answers created, then canceled). */
  private checkCreate(req: WatchCreateRequest, id: number): Span | string {
    if (this.watchers.has(id)) return `quorate: watch id ${id} is in use on this stream`;
    if (this.watchers.size >= this.limits.watchesPerStreamMax) {
      return `quorate: a stream holds at most ${this.limits.watchesPerStreamMax} watches`;
    }
    if (req.prev_kv && req.start_revision > 0) {
      return 'quorate: prev_kv on a watch from a past revision is not implemented yet (MVCC history)';
    }
    try {
      return spanOf(req.key, req.range_end);
    } catch (err) {
      return err instanceof EtcdError ? err.message : String(err);
    }
  }

  /** The smallest start the feed still serves after `from` (its revision is compact_revision). */
  private oldestWatchable(from: number): number {
    let lo = from + 1;
    let hi = this.ctx.engine.status().revision;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const probe = this.ctx.engine.watch(mid, () => {});
      if (probe === 'compacted') lo = mid + 1;
      else {
        probe.cancel();
        hi = mid;
      }
    }
    return lo + 1;
  }

  private freeId(): number {
    while (this.watchers.has(this.nextId)) this.nextId++;
    return this.nextId++;
  }

  private onChange(w: Watcher, change: KvChange): void {
    if (this.closed || this.watchers.get(w.id) !== w) return;
    w.seen = change.revision;
    if (!inSpan(w.span, change.key)) return;
    // What the watch knows changes with every event of its span, filtered out or not.
    const event = this.eventOf(w, change);
    if (event === undefined) return;
    const isPut = change.value !== null;
    if ((isPut && w.noPut) || (!isPut && w.noDelete)) return;
    w.pending.push(event);
    if (this.congested) w.backlog++;
    if (w.backlog > this.limits.backlogMax) {
      w.pending = [];
      this.cancel(
        w.id,
        `quorate: the watcher fell more than ${this.limits.backlogMax} events behind; ` +
          `watch again from revision ${change.revision}`,
      );
      return;
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /**
   * The event for `change`, with the key's version and create_revision when the watch knows
   * them (0 otherwise), and its prev_kv when asked; updates what the watch knows. Undefined
   * when the watch was cancelled because it could no longer keep track.
   */
  private eventOf(w: Watcher, change: KvChange): WatchEvent | undefined {
    const before = w.known.has(change.key)
      ? w.known.get(change.key)
      : w.tracksAll
        ? null
        : undefined;
    let after: Known | null | undefined = null;
    if (change.value !== null) {
      after =
        before === undefined
          ? undefined
          : {
              value: change.value,
              version: (before?.version ?? 0) + 1,
              modRevision: change.revision,
              createRevision: before === null ? change.revision : before.createRevision,
            };
    }
    if (after === undefined || (after === null && w.tracksAll)) w.known.delete(change.key);
    else w.known.set(change.key, after);
    if (w.known.size > this.limits.trackedKeysMax) {
      if (w.prevKv) {
        this.cancel(
          w.id,
          `quorate: a prev_kv watch tracks at most ${this.limits.trackedKeysMax} keys`,
        );
        return undefined;
      }
      w.known.clear();
      w.tracksAll = false;
    }
    const base = eventOf(change);
    const kv = after === undefined || after === null ? base.kv : keyValueOfKnown(change.key, after);
    const prev =
      w.prevKv && before !== undefined && before !== null
        ? keyValueOfKnown(change.key, before)
        : undefined;
    return { ...base, kv, ...(prev === undefined ? {} : { prev_kv: prev }) };
  }

  private flush(): void {
    this.flushQueued = false;
    for (const w of this.watchers.values()) {
      if (w.pending.length === 0) continue;
      const events = w.pending;
      w.pending = [];
      w.active = true;
      const last = events[events.length - 1] as WatchEvent;
      this.send({ watch_id: w.id, events, revision: last.kv.mod_revision });
    }
  }

  private cancel(id: number, reason: string): void {
    const w = this.watchers.get(id);
    if (w === undefined) return;
    this.flushOne(w);
    this.watchers.delete(id);
    w.handle?.cancel();
    this.send({ watch_id: id, canceled: true, cancel_reason: reason });
  }

  private flushOne(w: Watcher): void {
    if (w.pending.length === 0 || w.backlog > this.limits.backlogMax) return;
    const events = w.pending;
    w.pending = [];
    this.send({ watch_id: w.id, events, revision: (events.at(-1) as WatchEvent).kv.mod_revision });
  }

  /** Every event up to this revision has been sent to every watcher of the stream. */
  private progressRevision(): number {
    if (this.watchers.size === 0) return this.ctx.engine.status().revision;
    return Math.min(...[...this.watchers.values()].map((w) => w.seen));
  }

  private notifyProgress(): void {
    for (const w of this.watchers.values()) {
      if (w.progressNotify && !w.active && w.pending.length === 0) {
        this.send({ watch_id: w.id, revision: w.seen });
      }
      w.active = false;
    }
  }

  private send(
    fields: Partial<Omit<WatchResponse, 'header'>> & { readonly revision?: number },
  ): void {
    if (this.closed) return;
    const { revision, ...rest } = fields;
    const response: WatchResponse = {
      header: headerOf(this.ctx, revision ?? this.ctx.engine.status().revision),
      watch_id: 0,
      created: false,
      canceled: false,
      compact_revision: 0,
      cancel_reason: '',
      fragment: false,
      events: [],
      ...rest,
    };
    if (!this.call.write(response)) this.congested = true;
  }

  /** Ends every watch; `graceful`: the client half-closed, so finish the stream with OK. */
  close(graceful: boolean): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.progressTimer);
    for (const w of this.watchers.values()) w.handle?.cancel();
    this.watchers.clear();
    if (graceful) this.call.end();
  }
}

function knownOf(e: KvEntry): Known {
  return {
    value: e.value,
    version: e.version,
    modRevision: e.modRevision,
    createRevision: e.version === 1 ? e.modRevision : 0,
  };
}

function keyValueOfKnown(key: string, k: Known): KeyValue {
  return {
    key: wireBytesOf(key),
    create_revision: k.createRevision,
    mod_revision: k.modRevision,
    version: k.version,
    value: wireBytesOf(k.value),
    lease: 0,
  };
}

function eventOf(change: KvChange): WatchEvent {
  // The feed carries no version yet (MVCC will): 0 means unknown here, as README says.
  return {
    type: change.value === null ? EventType.delete : EventType.put,
    kv: {
      key: wireBytesOf(change.key),
      create_revision: 0,
      mod_revision: change.revision,
      version: 0,
      value: change.value === null ? Buffer.alloc(0) : wireBytesOf(change.value),
      lease: 0,
    },
  };
}
