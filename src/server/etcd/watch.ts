import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { KvFeedChange } from '../../kv/machine.ts';
import type { KeyRange } from '../../kv/ops.ts';
import { inRange } from '../../kv/range.ts';
import type { WatchHandle } from '../engine.ts';
import { type EtcdContext, headerOf, resultOf } from './context.ts';
import { toEtcdError } from './errors.ts';
import { keyRangeOf, wireBytesOf, wireKvOf } from './keys.ts';
import {
  EventType,
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
}

/** clientv3's InvalidWatchID: the id of a progress answer meant for the whole stream. */
const STREAM_WATCH_ID = -1;

interface Watcher {
  readonly id: number;
  readonly range: KeyRange;
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
}

type Call = ServerDuplexStream<WatchRequest, WatchResponse>;

/**
 * One Watch stream: many watches, each over the engine's change feed, whose changes carry
 * the key's state after and before them from the store's history, so events have exact
 * versions, create and mod revisions, leases and prev_kv, from now or from any revision the
 * store still keeps (a watch from a compacted one is cancelled with compact_revision, as
 * etcd does). Events go out in revision order, batched per turn of the event loop; a
 * cancel or the end of the stream cancels the feeds.
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
    const watcher: Watcher = {
      id,
      range: checked,
      noPut: req.filters.includes(WatchFilter.noPut),
      noDelete: req.filters.includes(WatchFilter.noDelete),
      progressNotify: req.progress_notify,
      handle: undefined,
      seen: 0,
      pending: [],
      backlog: 0,
      active: false,
      prevKv: req.prev_kv,
    };
    this.watchers.set(id, watcher);
    if (req.start_revision > 0) {
      this.begin(watcher, req.start_revision - 1);
      return;
    }
    // From now: at a linearizable read's revision, so "now" is no earlier than any write
    // already acknowledged anywhere (a lagging member would otherwise replay those as new).
    // Any key serves; one key is the cheapest read.
    const probe = { f: 'range', key: checked.key } as const;
    this.ctx.engine.read(probe, 'linearizable').then(
      (read) => {
        if (this.closed || this.watchers.get(id) !== watcher) return;
        this.begin(watcher, resultOf(read, 'range').revision);
      },
      () => {
        // No linearizable read now: from this member's revision, as before the read existed.
        if (this.closed || this.watchers.get(id) !== watcher) return;
        this.begin(watcher, this.ctx.engine.status().revision);
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

  /** The watch's key range, or why it is refused (etcd answers created, then canceled). */
  private checkCreate(req: WatchCreateRequest, id: number): KeyRange | string {
    if (this.watchers.has(id)) return `quorate: watch id ${id} is in use on this stream`;
    if (this.watchers.size >= this.limits.watchesPerStreamMax) {
      return `quorate: a stream holds at most ${this.limits.watchesPerStreamMax} watches`;
    }
    if (req.start_revision < 0) return 'quorate: start_revision must not be negative';
    // etcd's watch server: an empty key is "\0", the smallest key.
    return keyRangeOf(req.key.length === 0 ? Buffer.from([0]) : req.key, req.range_end);
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

  private onChange(w: Watcher, change: KvFeedChange): void {
    if (this.closed || this.watchers.get(w.id) !== w) return;
    w.seen = change.revision;
    if (!inRange(w.range, change.key)) return;
    const isPut = change.kv !== null;
    if ((isPut && w.noPut) || (!isPut && w.noDelete)) return;
    w.pending.push(eventOf(change, w.prevKv));
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

/**
 * etcd's event for a change: the key as the put left it, or for a delete etcd's tombstone
 * (the key and the deleting revision, every other field zero); prev_kv when asked and the key
 * existed before.
 */
function eventOf(change: KvFeedChange, withPrev: boolean): WatchEvent {
  const kv =
    change.kv === null
      ? {
          key: wireBytesOf(change.key),
          create_revision: 0,
          mod_revision: change.revision,
          version: 0,
          value: Buffer.alloc(0),
          lease: 0,
        }
      : wireKvOf(change.kv);
  const type = change.kv === null ? EventType.delete : EventType.put;
  if (!withPrev || change.prev === null) return { type, kv };
  return { type, kv, prev_kv: wireKvOf(change.prev) };
}
