import type { HistoryEvent, Json } from '../../check/history.ts';
import { checkRevisions, type RevisionEvent } from '../../check/model-revision.ts';
import { assert } from '../../kernel/assert.ts';
import type { CoreTypes } from '../../kernel/core.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import type { Rng } from '../../kernel/rng.ts';
import type { KvOp as MachineKvOp } from '../../kv/machine.ts';
import type { CheckOutcome, Workload, WorkloadContext, WorkloadIo } from '../protocol.ts';

/**
 * A key-value operation as the workload issues it. Written values are unique strings.
 * - get, put, delete, cas: the state machine's single-key operations;
 * - txnCas: the same compare-and-set as an etcd txn (compare the value, or version 0 for
 *   "absent"; on success put, on failure range the key), in the history as a cas;
 * - txnPair: an etcd txn putting two keys at once (one revision for both), in the history
 *   as two puts, the second under the client's companion process;
 * - readAt: an etcd range of one key at a past revision (one this client has seen), checked
 *   by the revision model (src/check/model-revision.ts) rather than the per-key search.
 */
export type KvOp = Extract<MachineKvOp, { readonly f: 'get' | 'put' | 'delete' | 'cas' }>;

/** The operations only protocols with an MVCC store take (see `KvAdapter.requestMvcc`). */
export type MvccWorkloadOp =
  | {
      readonly f: 'txnCas';
      readonly key: string;
      readonly expected: string | null;
      readonly value: string;
    }
  | {
      readonly f: 'txnPair';
      readonly key: string;
      readonly value: string;
      readonly key2: string;
      readonly value2: string;
    }
  | { readonly f: 'readAt'; readonly key: string; readonly revision: number };

export type KvWorkloadOp = KvOp | MvccWorkloadOp;

function isMvccOp(op: KvWorkloadOp): op is MvccWorkloadOp {
  return op.f === 'txnCas' || op.f === 'txnPair' || op.f === 'readAt';
}

/** The reads among the workload's operations: never applied, so always safe to retry. */
export function isWorkloadRead(op: KvWorkloadOp): boolean {
  return op.f === 'get' || op.f === 'readAt';
}

/** The state machine operation a workload operation is sent as. */
export function machineOp(op: KvWorkloadOp): MachineKvOp {
  switch (op.f) {
    case 'txnCas':
      return {
        f: 'txn',
        compare: [
          op.expected === null
            ? { key: op.key, target: 'version', result: 'equal', version: 0 }
            : { key: op.key, target: 'value', result: 'equal', value: op.expected },
        ],
        success: [{ f: 'put', key: op.key, value: op.value }],
        failure: [{ f: 'range', key: op.key }],
      };
    case 'txnPair':
      return {
        f: 'txn',
        compare: [],
        success: [
          { f: 'put', key: op.key, value: op.value },
          { f: 'put', key: op.key2, value: op.value2 },
        ],
        failure: [],
      };
    case 'readAt':
      return { f: 'range', key: op.key, revision: op.revision };
    default:
      return op;
  }
}

/** What one reply means to the client. */
export type KvOutcome =
  /**
   * Took effect; `value` is what a get read (null = absent). `revision`: the store revision
   * the result named; `writeRevision`: the revision the write took (undefined if it wrote
   * nothing); `modRevision`: the read key's mod revision (0 when absent).
   */
  | {
      readonly kind: 'ok';
      readonly value: string | null;
      readonly revision?: number;
      readonly writeRevision?: number;
      readonly modRevision?: number;
    }
  /** Definitely did not take effect (cas mismatch, a refusal before applying). */
  | { readonly kind: 'fail'; readonly reason: string }
  /** Not handled here and not applied; try `hint` if known. */
  | { readonly kind: 'redirect'; readonly hint: NodeId | undefined }
  /** May or may not have taken effect (leadership lost after proposing...). */
  | { readonly kind: 'unknown' };

/** How a protocol's requests and replies carry key-value operations. */
export interface KvAdapter<T extends CoreTypes> {
  /**
   * The request for one attempt. `client` is stable across a client's operations (a session
   * for protocols that deduplicate); `requestId` identifies the operation (the same for every
   * attempt when the protocol deduplicates retries, so it serves as the session's sequence
   * number); `attemptId` is new for every attempt and must come back in the reply.
   */
  request(op: KvOp, requestId: number, client: ClientId, attemptId: number): T['request'];
  /**
   * The request for an MVCC operation (an etcd txn, a read at a past revision); protocols
   * whose store has revisions provide it, and only then does the workload issue them.
   */
  readonly requestMvcc?: (
    op: MvccWorkloadOp,
    requestId: number,
    client: ClientId,
    attemptId: number,
  ) => T['request'];
  /**
   * The attempt id a reply answers. Replies to earlier attempts are ignored: a late
   * redirect from an abandoned attempt must not make the client give up on the attempt in
   * flight, which may still take effect.
   */
  attemptIdOf(reply: T['reply']): number;
  classify(reply: T['reply']): KvOutcome;
  /**
   * Whether the protocol applies a retried request id at most once (client sessions); only
   * then may a write be retried after an attempt that may have taken effect.
   */
  readonly dedupsRetries: boolean;
}

/** The end-of-run history check (linearizability for key-value protocols). */
export type HistoryCheck = (events: readonly HistoryEvent[]) => CheckOutcome;

export interface KvWorkloadSettings {
  readonly keys: number;
  /** Mean idle time between a client's operations. */
  readonly thinkMeanMs: number;
  /** One attempt's timeout; then the client retries elsewhere or gives up. */
  readonly attemptTimeoutMs: number;
  /** Attempts per operation in the safety phase (final reads retry until they succeed). */
  readonly attemptsMax: number;
  /**
   * Attempts per operation when the protocol deduplicates retries: retrying is then always
   * safe, and every write given up becomes an indeterminate `info` that makes the history
   * harder to check, so such clients persist longer, as a real client with a session would.
   */
  readonly dedupAttemptsMax: number;
  /** Pause before retrying after a redirect or refusal. */
  readonly backoffMs: number;
}

export const defaultKvSettings: KvWorkloadSettings = {
  keys: 3,
  thinkMeanMs: 20,
  attemptTimeoutMs: 400,
  attemptsMax: 5,
  dedupAttemptsMax: 20,
  backoffMs: 5,
};

const IDLE = 0;
const AWAITING_REPLY = 1;
const BACKING_OFF = 2;

interface ClientState {
  readonly id: ClientId;
  process: number;
  /** The process under which a txnPair's second key appears in the history. */
  companion: number;
  state: number;
  op: KvWorkloadOp | undefined;
  attempts: number;
  requestId: number;
  attemptId: number;
  token: number;
  target: NodeId;
  mayHaveApplied: boolean;
  isFinalRead: boolean;
  finalDone: boolean;
  /** The highest store revision this client has seen in a result. */
  seenRevision: number;
  opId: number;
  invokeTime: number;
}

/**
 * Jepsen-style key-value clients: each of C clients runs one operation at a time, over a
 * small key set so operations contend; on timeout or redirect it retries at another node.
 * The history follows src/check/history.ts: a write that may have taken effect and cannot
 * be retried safely completes as `info`, and its process retires (the client continues
 * under a fresh process id). After healing, every client performs one final read that
 * must succeed: the liveness check.
 */
export class KvWorkload<T extends CoreTypes> implements Workload<T> {
  private readonly clients: ClientState[];
  private readonly events: HistoryEvent[] = [];
  private readonly revisionEvents: RevisionEvent[] = [];
  private nextOpId = 0;
  private readonly known = new Map<string, string | null>();
  private io: WorkloadIo<T> | undefined;
  private remaining: number;
  private nextProcess: number;
  private nextRequestId = 0;
  private nextAttemptId = 0;
  private nextValue = 0;
  private healed = false;

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly adapter: KvAdapter<T>,
    private readonly checkHistory: HistoryCheck,
    private readonly settings: KvWorkloadSettings = defaultKvSettings,
  ) {
    assert(settings.keys >= 1 && settings.attemptsMax >= 1, 'need >= 1 key and >= 1 attempt');
    assert(settings.attemptTimeoutMs > 0 && settings.backoffMs >= 0, 'bad KV workload timing');
    this.remaining = ctx.ops;
    this.nextProcess = 2 * ctx.clients.length;
    this.clients = ctx.clients.map((id, i) => ({
      id,
      process: i,
      companion: ctx.clients.length + i,
      state: IDLE,
      op: undefined,
      attempts: 0,
      requestId: 0,
      attemptId: 0,
      token: 0,
      target: ctx.members[0]!,
      mayHaveApplied: false,
      isFinalRead: false,
      finalDone: false,
      seenRevision: 0,
      opId: 0,
      invokeTime: 0,
    }));
  }

  private get rng(): Rng {
    return this.ctx.rng;
  }

  start(io: WorkloadIo<T>): void {
    this.io = io;
    for (const c of this.clients) this.think(c);
  }

  exhausted(): boolean {
    return this.remaining === 0;
  }

  heal(): void {
    this.healed = true;
  }

  done(): boolean {
    return this.healed && this.clients.every((c) => c.finalDone);
  }

  describePending(): string {
    const stuck = this.clients.filter((c) => !c.finalDone);
    const show = (c: ClientState) =>
      `client ${c.id} ${c.op ? `${c.op.f} ${c.op.key} after ${c.attempts} attempt(s)` : 'idle'}`;
    return `${stuck.length} client(s) unfinished: ${stuck.slice(0, 5).map(show).join('; ')}`;
  }

  check(): CheckOutcome {
    // Linearizability first, so its findings read as before; then what only revisions show.
    const linearizable = this.checkHistory(this.events);
    if (linearizable.verdict === 'violation') return linearizable;
    const revisions = checkRevisions(this.revisionEvents);
    if (!revisions.ok) return { verdict: 'violation', message: `revisions: ${revisions.why}` };
    if (linearizable.verdict !== 'pass') return linearizable;
    const reads = this.revisionEvents.filter((e) => e.kind === 'readAt').length;
    return {
      verdict: 'pass',
      summary: `${linearizable.summary}; revisions consistent (${reads} past reads)`,
    };
  }

  onTimer(clientId: ClientId, token: number): void {
    const c = this.client(clientId);
    if (token !== c.token) return;
    switch (c.state) {
      case IDLE:
        this.begin(c);
        return;
      case BACKING_OFF:
        this.attempt(c);
        return;
      case AWAITING_REPLY:
        if (c.op !== undefined && !isWorkloadRead(c.op)) c.mayHaveApplied = true;
        this.retryOrGiveUp(c, this.nextNode(c.target));
        return;
    }
  }

  onReply(clientId: ClientId, from: NodeId, reply: T['reply']): void {
    const c = this.client(clientId);
    if (c.state !== AWAITING_REPLY || this.adapter.attemptIdOf(reply) !== c.attemptId) return;
    const outcome = this.adapter.classify(reply);
    switch (outcome.kind) {
      case 'ok':
        this.completeOk(c, outcome);
        return;
      case 'fail':
        if (c.isFinalRead) this.retryOrGiveUp(c, this.nextNode(from));
        else this.complete(c, 'fail', null);
        return;
      case 'redirect':
        this.retryOrGiveUp(c, outcome.hint ?? this.nextNode(from));
        return;
      case 'unknown':
        if (c.op !== undefined && !isWorkloadRead(c.op)) c.mayHaveApplied = true;
        this.retryOrGiveUp(c, this.nextNode(from));
        return;
    }
  }

  private client(id: ClientId): ClientState {
    const c = this.clients[id - 1];
    if (c === undefined) assert(false, `unknown client ${id}`);
    return c;
  }

  private think(c: ClientState): void {
    c.state = IDLE;
    const io = this.io!;
    io.setTimer(c.id, io.now() + this.rng.exponential(this.settings.thinkMeanMs), ++c.token);
  }

  private begin(c: ClientState): void {
    if (this.healed) {
      if (c.finalDone) return;
      c.isFinalRead = true;
      c.op = { f: 'get', key: this.randomKey() };
    } else {
      if (this.remaining === 0) return;
      this.remaining--;
      c.op = this.randomOp(c);
    }
    // Like clients behind a load balancer: any node may get the first attempt, so a split
    // brain is visible to clients rather than hidden behind one sticky connection.
    c.target = this.rng.pick(this.ctx.members);
    c.attempts = 0;
    c.mayHaveApplied = false;
    c.requestId = ++this.nextRequestId;
    c.opId = ++this.nextOpId;
    c.invokeTime = this.io!.now();
    this.record(c, 'invoke', invokeValue(c.op));
    this.attempt(c);
  }

  private attempt(c: ClientState): void {
    const io = this.io!;
    const op = c.op!;
    // Without deduplication a retry is a new request; with it, the same id is answered once.
    if (c.attempts > 0 && !this.adapter.dedupsRetries) c.requestId = ++this.nextRequestId;
    c.attempts++;
    c.state = AWAITING_REPLY;
    c.attemptId = ++this.nextAttemptId;
    const request =
      isMvccOp(op) && this.adapter.requestMvcc !== undefined
        ? this.adapter.requestMvcc(op, c.requestId, c.id, c.attemptId)
        : this.adapter.request(op as KvOp, c.requestId, c.id, c.attemptId);
    io.send(c.id, c.target, request);
    io.setTimer(c.id, io.now() + this.settings.attemptTimeoutMs, ++c.token);
  }

  private retryOrGiveUp(c: ClientState, next: NodeId): void {
    const op = c.op!;
    const safeToRetry = isWorkloadRead(op) || this.adapter.dedupsRetries || !c.mayHaveApplied;
    const attemptsMax = this.adapter.dedupsRetries
      ? this.settings.dedupAttemptsMax
      : this.settings.attemptsMax;
    const attemptsLeft = c.isFinalRead || c.attempts < attemptsMax;
    if (!safeToRetry || !attemptsLeft) {
      // A refusal proves only that the copy it answers was not applied: the network may have
      // duplicated a request, and another copy may have reached a leader. So a write that was
      // sent and never got a result from the state machine ends as `info`, never `fail`.
      const unknown = c.mayHaveApplied || !isWorkloadRead(op);
      this.complete(c, unknown ? 'info' : 'fail', null);
      return;
    }
    c.target = next;
    c.state = BACKING_OFF;
    const io = this.io!;
    io.setTimer(c.id, io.now() + this.settings.backoffMs, ++c.token);
  }

  private completeOk(c: ClientState, outcome: Extract<KvOutcome, { kind: 'ok' }>): void {
    const op = c.op!;
    c.seenRevision = Math.max(c.seenRevision, outcome.revision ?? 0);
    if (op.f === 'readAt') {
      this.revisionEvents.push({
        kind: 'readAt',
        op: c.opId,
        key: op.key,
        at: op.revision,
        value: outcome.value,
        modRevision: outcome.modRevision ?? 0,
      });
    } else if (op.f !== 'get' && outcome.writeRevision !== undefined) {
      this.recordWrite(c, op, outcome.writeRevision, this.io!.now());
    }
    this.complete(c, 'ok', outcome.value);
  }

  private recordWrite(
    c: ClientState,
    op: KvWorkloadOp,
    revision: number | undefined,
    at: number,
  ): void {
    const value = op.f === 'delete' ? null : 'value' in op ? op.value : null;
    this.revisionEvents.push({
      kind: 'write',
      op: c.opId,
      key: op.key,
      value,
      revision,
      invokeTime: c.invokeTime,
      returnTime: at,
    });
    if (op.f === 'txnPair') {
      this.revisionEvents.push({
        kind: 'write',
        op: c.opId,
        key: op.key2,
        value: op.value2,
        revision,
        invokeTime: c.invokeTime,
        returnTime: at,
      });
    }
  }

  private complete(c: ClientState, type: 'ok' | 'fail' | 'info', read: string | null): void {
    const op = c.op!;
    if (type === 'info' && !isWorkloadRead(op)) {
      this.recordWrite(c, op, undefined, Number.POSITIVE_INFINITY);
    }
    if (op.f === 'readAt') {
      // Past reads live in the revision model only: to the per-key search they are not reads now.
      this.finish(c, type, op, read);
      return;
    }
    const value = type === 'ok' && op.f === 'get' ? read : invokeValue(op);
    this.record(c, type, value);
    this.finish(c, type, op, read);
  }

  private finish(
    c: ClientState,
    type: 'ok' | 'fail' | 'info',
    op: KvWorkloadOp,
    read: string | null,
  ): void {
    if (type === 'ok') this.learn(op, read);
    if (type === 'info') {
      c.process = this.nextProcess++;
      c.companion = this.nextProcess++;
    }
    if (c.isFinalRead && type === 'ok') c.finalDone = true;
    c.op = undefined;
    this.think(c);
  }

  private record(c: ClientState, type: HistoryEvent['type'], value: Json): void {
    const op = c.op!;
    if (op.f === 'readAt') return;
    const f = op.f === 'txnCas' ? 'cas' : op.f === 'txnPair' ? 'put' : op.f;
    this.recordEvent({ process: c.process, type, f, key: op.key, value, time: this.io!.now() });
    if (op.f === 'txnPair') {
      const time = this.io!.now();
      this.recordEvent({ process: c.companion, type, f, key: op.key2, value: op.value2, time });
    }
  }

  private recordEvent(event: HistoryEvent): void {
    this.events.push(event);
    this.io!.record(event);
  }

  /** Remembers the latest value seen per key, so cas operations often match. */
  private learn(op: KvWorkloadOp, read: string | null): void {
    if (op.f === 'get') this.known.set(op.key, read);
    else if (op.f === 'delete') this.known.set(op.key, null);
    else if (op.f !== 'readAt') this.known.set(op.key, op.value);
    if (op.f === 'txnPair') this.known.set(op.key2, op.value2);
  }

  private randomKey(): string {
    return `k${this.rng.int(this.settings.keys)}`;
  }

  private randomOp(c: ClientState): KvWorkloadOp {
    const key = this.randomKey();
    if (this.adapter.requestMvcc === undefined) return this.randomBasicOp(key);
    const roll = this.rng.int(20);
    if (roll < 7) return { f: 'get', key };
    if (roll < 12) return { f: 'put', key, value: `v${++this.nextValue}` };
    if (roll < 14) return { f: 'delete', key };
    if (roll < 18) {
      if (roll === 17) return this.randomPair(key);
      const expected = this.known.get(key) ?? null;
      const f = roll < 16 ? 'cas' : 'txnCas';
      return { f, key, expected, value: `v${++this.nextValue}` };
    }
    if (c.seenRevision === 0) return { f: 'get', key };
    // A revision this client has seen, so it is committed; recent, so rarely compacted.
    const back = this.rng.int(Math.min(8, c.seenRevision));
    return { f: 'readAt', key, revision: c.seenRevision - back };
  }

  /** Two different keys put in one txn (a plain put when there is one key only). */
  private randomPair(key: string): KvWorkloadOp {
    const keys = this.settings.keys;
    if (keys < 2) return { f: 'put', key, value: `v${++this.nextValue}` };
    const at = Number(key.slice(1));
    const key2 = `k${(at + 1 + this.rng.int(keys - 1)) % keys}`;
    const value = `v${++this.nextValue}`;
    return { f: 'txnPair', key, value, key2, value2: `v${++this.nextValue}` };
  }

  private randomBasicOp(key: string): KvOp {
    const roll = this.rng.int(10);
    if (roll < 4) return { f: 'get', key };
    if (roll < 7) return { f: 'put', key, value: `v${++this.nextValue}` };
    if (roll < 8) return { f: 'delete', key };
    const expected = this.known.get(key) ?? null;
    return { f: 'cas', key, expected, value: `v${++this.nextValue}` };
  }

  private nextNode(after: NodeId): NodeId {
    const members = this.ctx.members;
    const i = members.indexOf(after);
    return members[(i + 1) % members.length]!;
  }
}

/** The history `value` of an invocation (and of a completion other than a get's ok). */
function invokeValue(op: KvWorkloadOp): Json {
  switch (op.f) {
    case 'get':
    case 'delete':
      return null;
    case 'put':
      return op.value;
    case 'cas':
    case 'txnCas':
      return [op.expected, op.value];
    case 'txnPair':
      return op.value;
    case 'readAt':
      return op.revision;
  }
}
