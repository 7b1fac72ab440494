import type { NodeId } from '../kernel/ids.ts';
import type { KvChange } from '../kv/machine.ts';
import { caFetch, type FetchLike } from './ca-fetch.ts';
import { QuorateError, UnknownOutcomeError, UnreachableError } from './errors.ts';
import { type HttpSend, httpSend } from './http.ts';
import { parseSse } from './sse.ts';
import {
  type AuthenticateResponse,
  type CasResponse,
  type DeleteResponse,
  type ErrorBody,
  type GetResponse,
  HEADER,
  type ListResponse,
  type MemberJson,
  type MembersResponse,
  neverSentErrorCodes,
  type PutResponse,
  SESSION_MAX,
  type StatusResponse,
} from './wire.ts';

export interface ClientOptions {
  /** Base URLs of some cluster members, e.g. http://127.0.0.1:2379. */
  readonly endpoints: readonly string[];
  /** Time budget of one attempt (one HTTP request). */
  readonly timeoutMs?: number;
  /** Further attempts after the first one fails in a retryable way. */
  readonly retries?: number;
  /** Exactly-once session id; random by default. Never share one between live clients. */
  readonly session?: number;
  /** First backoff between attempts; doubles per attempt up to `backoffMaxMs`, jittered. */
  readonly backoffMs?: number;
  readonly backoffMaxMs?: number;
  /** Writes queued behind the one in flight (a session issues one write at a time). */
  readonly pendingWritesMax?: number;
  /** PEM of a private CA for https endpoints; it replaces the system's roots for them. */
  readonly ca?: string | Buffer;
  /** A token (etcd's Authenticate, or POST /v1/auth/authenticate), sent as a bearer. */
  readonly token?: string;
  /** Or a user and password: the client authenticates before its first call. */
  readonly user?: { readonly name: string; readonly password: string };
}

export type Consistency = 'linearizable' | 'stale';

/**
 * Why an attempt ended, which decides whether to retry and where:
 * - `answer`: the server answered; `body` is the parsed JSON.
 * - `not-sent`: the request provably never reached a server (refused, DNS).
 * - `lost`: it may have reached one (timeout, reset): a write may have applied.
 */
type Attempt =
  | { readonly kind: 'answer'; readonly status: number; readonly body: unknown }
  | { readonly kind: 'not-sent'; readonly why: string }
  | { readonly kind: 'lost'; readonly why: string };

/** How a call may be retried. */
type CallKind =
  /** Reads: any failure may be retried. */
  | 'read'
  /** Session writes: a retry carries the same (session, seq), so it applies at most once. */
  | 'idempotent-write'
  /** Membership changes: retried only when the previous attempt surely never arrived. */
  | 'write';

/** Answers that mean "this node cannot serve it now; another one or a later try may". */
const retryableCodes = new Set([
  'no-leader',
  'not-leader',
  'leader-unreachable',
  'overloaded',
  'unavailable',
  'too-many-watchers',
]);

/**
 * A typed client for the key-value service. It remembers which node leads (from the
 * `quorate-leader` header of forwarded answers and from not-leader hints) and retries:
 * reads freely, writes under one exactly-once session, so a write retried after a lost
 * answer applies once. A write whose outcome stays unknown rejects with UnknownOutcomeError.
 */
export class QuorateClient {
  readonly session: number;
  private readonly endpoints: readonly string[];
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly backoffMaxMs: number;
  private readonly pendingWritesMax: number;
  /** Watch streams only; every other call goes through `send`. */
  private readonly fetch: FetchLike;
  private readonly send: HttpSend;
  private cursor = 0;
  private leaderUrl: string | undefined;
  private seq = 0;
  private writeQueue: Promise<unknown> = Promise.resolve();
  private pendingWrites = 0;

  private token: string | undefined;
  private readonly user: { readonly name: string; readonly password: string } | undefined;
  private authenticating: Promise<string> | undefined;

  constructor(options: ClientOptions) {
    if (options.endpoints.length === 0) throw new RangeError('give at least one endpoint');
    this.endpoints = options.endpoints.map(normalizeUrl);
    this.timeoutMs = positive('timeoutMs', options.timeoutMs ?? 5000);
    this.retries = positive('retries', options.retries ?? 5, 0);
    this.backoffMs = positive('backoffMs', options.backoffMs ?? 50);
    this.backoffMaxMs = positive('backoffMaxMs', options.backoffMaxMs ?? 2000);
    this.pendingWritesMax = positive('pendingWritesMax', options.pendingWritesMax ?? 1000);
    this.fetch = options.ca === undefined ? (url, init) => fetch(url, init) : caFetch(options.ca);
    this.send = httpSend(options.ca);
    this.session = options.session ?? randomSession();
    this.token = options.token;
    this.user = options.user;
    if (!Number.isSafeInteger(this.session) || this.session < 1) {
      throw new RangeError(`session must be an integer in 1..${SESSION_MAX}`);
    }
  }

  /** Authenticates as `name` (auth must be on): later calls carry the token it gets. */
  async authenticate(name: string, password: string): Promise<string> {
    const r = await this.call<AuthenticateResponse>('read', 'POST', '/v1/auth/authenticate', {
      body: { name, password },
      anonymous: true,
    });
    this.token = r.token;
    return r.token;
  }

  /** The bearer header of calls, authenticating first with the configured user. */
  private async authHeaders(): Promise<Record<string, string>> {
    if (this.token === undefined && this.user !== undefined) {
      const { name, password } = this.user;
      this.authenticating ??= this.authenticate(name, password).finally(() => {
        this.authenticating = undefined;
      });
      await this.authenticating;
    }
    return this.token === undefined ? {} : { authorization: `Bearer ${this.token}` };
  }

  /** The node this client currently sends to: the known leader, else a configured endpoint. */
  get target(): string {
    return this.leaderUrl ?? (this.endpoints[this.cursor % this.endpoints.length] as string);
  }

  /**
   * Sets `key` to `value`: text is stored as its UTF-8, bytes exactly as given (they travel
   * in base64, `?encoding=base64`, as etcd's JSON gateway carries bytes).
   */
  put(key: string, value: string | Uint8Array): Promise<PutResponse> {
    if (typeof value === 'string') return this.sessionWrite('PUT', keyPath(key), { value });
    const path = `${keyPath(base64Of(new TextEncoder().encode(key)))}?encoding=base64`;
    return this.sessionWrite('PUT', path, { value: base64Of(value) });
  }

  get(key: string, consistency: Consistency = 'linearizable'): Promise<GetResponse> {
    return this.call('read', 'GET', `${keyPath(key)}${query({ consistency })}`);
  }

  delete(key: string): Promise<DeleteResponse> {
    return this.sessionWrite('DELETE', keyPath(key), undefined);
  }

  /** Sets `key` to `value` only if its value is `expected` (null: only if absent). */
  cas(key: string, expected: string | null, value: string): Promise<CasResponse> {
    return this.sessionWrite('POST', `${keyPath(key)}/cas`, { expected, value });
  }

  /** Sets `key` to `value` only if its version is `expectedVersion` (0: only if absent). */
  casVersion(key: string, expectedVersion: number, value: string): Promise<CasResponse> {
    return this.sessionWrite('POST', `${keyPath(key)}/cas`, { expectedVersion, value });
  }

  list(
    prefix: string,
    options: { limit?: number; consistency?: Consistency } = {},
  ): Promise<ListResponse> {
    const q = query({ prefix, limit: options.limit, consistency: options.consistency });
    return this.call('read', 'GET', `/v1/kv${q}`);
  }

  /** The status of one node: `endpoint`, or the current target. */
  async status(endpoint?: string): Promise<StatusResponse> {
    if (endpoint === undefined) return this.call('read', 'GET', '/v1/status');
    const attempt = await this.attempt(normalizeUrl(endpoint), 'GET', '/v1/status', {});
    return this.settle<StatusResponse>(attempt, endpoint);
  }

  async members(): Promise<readonly MemberJson[]> {
    return (await this.call<MembersResponse>('read', 'GET', '/v1/members')).members;
  }

  async addLearner(id: NodeId, peerAddress: string, clientUrl: string): Promise<void> {
    await this.call('write', 'POST', '/v1/members', { body: { id, peerAddress, clientUrl } });
  }

  async promote(id: NodeId): Promise<void> {
    await this.call('write', 'POST', `/v1/members/${id}/promote`);
  }

  async remove(id: NodeId): Promise<void> {
    await this.call('write', 'DELETE', `/v1/members/${id}`);
  }

  /**
   * Changes to keys under `prefix` after `fromRevision` (default: from now), resuming after
   * the last one seen when the stream drops. Ends when `signal` aborts; throws QuorateError
   * `compacted` when the requested history is gone.
   */
  async *watch(
    prefix: string,
    options: { fromRevision?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<KvChange> {
    let from = options.fromRevision;
    let failures = 0;
    const aborted = () => options.signal?.aborted === true;
    while (!aborted()) {
      const target = this.target;
      try {
        for await (const item of this.watchOnce(target, prefix, from, options.signal)) {
          if (item.kind === 'start') {
            from = item.fromRevision;
          } else {
            failures = 0;
            from = item.change.revision;
            yield item.change;
          }
        }
        if (aborted()) return;
        failures++; // the server ended the stream (it is closing): resume elsewhere
        this.failOver(target);
      } catch (err) {
        if (aborted()) return;
        const resumable =
          !(err instanceof QuorateError) ||
          retryableCodes.has(err.code) ||
          err.code === 'slow-watcher';
        if (!resumable) throw err;
        if (!(err instanceof QuorateError)) this.failOver(target);
        failures++;
      }
      if (failures > this.retries) {
        throw new UnreachableError(`watch: ${failures} connections failed in a row`);
      }
      await sleep(this.backoff(failures));
    }
  }

  /** One watch connection; yields its start revision, then its changes. */
  private async *watchOnce(
    target: string,
    prefix: string,
    fromRevision: number | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<
    { kind: 'start'; fromRevision: number } | { kind: 'change'; change: KvChange }
  > {
    const abort = new AbortController();
    const stop = () => abort.abort();
    signal?.addEventListener('abort', stop, { once: true });
    const connectTimer = setTimeout(stop, this.timeoutMs);
    try {
      const res = await this.fetch(`${target}/v1/watch${query({ prefix, fromRevision })}`, {
        headers: { accept: 'text/event-stream', ...(await this.authHeaders()) },
        signal: abort.signal,
      });
      clearTimeout(connectTimer);
      if (!res.ok || res.body === null) {
        const body: unknown = await res.json().catch(() => undefined);
        throw answerError(res.status, body, target);
      }
      for await (const event of parseSse(res.body, 64 * 1024 * 1024)) {
        const data: unknown = JSON.parse(event.data);
        if (event.event === 'watching') {
          yield { kind: 'start', fromRevision: (data as { fromRevision: number }).fromRevision };
        } else if (event.event === 'change') {
          yield { kind: 'change', change: data as KvChange };
        } else if (event.event === 'error') {
          throw answerError(200, data, target);
        }
      }
    } finally {
      clearTimeout(connectTimer);
      signal?.removeEventListener('abort', stop);
      abort.abort();
    }
  }

  /** Queues a write under this client's session: one in flight at a time, as sessions need. */
  private sessionWrite<T>(method: string, path: string, body: unknown): Promise<T> {
    if (this.pendingWrites >= this.pendingWritesMax) {
      return Promise.reject(
        new QuorateError('too-many-pending', `${this.pendingWritesMax} writes already queued`),
      );
    }
    this.pendingWrites++;
    const run = async (): Promise<T> => {
      this.seq++;
      const headers = { [HEADER.session]: String(this.session), [HEADER.seq]: String(this.seq) };
      try {
        return await this.call<T>('idempotent-write', method, path, {
          headers,
          ...(body === undefined ? {} : { body }),
        });
      } finally {
        this.pendingWrites--;
      }
    };
    const result = this.writeQueue.then(run, run);
    this.writeQueue = result.catch(() => undefined);
    return result;
  }

  /** Sends a request, retrying as `kind` allows; resolves with the parsed answer. */
  private async call<T>(
    kind: CallKind,
    method: string,
    path: string,
    extra: { body?: unknown; headers?: Record<string, string>; anonymous?: boolean } = {},
  ): Promise<T> {
    if (extra.anonymous !== true) {
      extra = { ...extra, headers: { ...(await this.authHeaders()), ...extra.headers } };
    }
    let mayHaveApplied = false;
    let last: unknown;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt > 0) await sleep(this.backoff(attempt));
      const target = this.target;
      const outcome = await this.attempt(target, method, path, extra);
      try {
        return this.settle<T>(outcome, target);
      } catch (err) {
        last = err;
        const lost = err instanceof UnknownOutcomeError;
        if (lost && kind === 'write') throw err;
        if (lost) mayHaveApplied = true;
        if (err instanceof QuorateError && !lost && !retryableCodes.has(err.code)) {
          if (err.code !== 'unreachable') throw err;
        }
      }
    }
    const why = last instanceof Error ? last.message : String(last);
    const tries = `${this.retries + 1} attempt(s)`;
    if (mayHaveApplied && kind !== 'read') {
      throw new UnknownOutcomeError(`no answer after ${tries}; it may or may not apply: ${why}`);
    }
    if (last instanceof UnknownOutcomeError)
      throw new UnreachableError(`no answer after ${tries}: ${why}`);
    throw asError(last);
  }

  /** Turns one attempt into a value or a typed error, and learns where the leader is. */
  private settle<T>(outcome: Attempt, target: string): T {
    switch (outcome.kind) {
      case 'not-sent':
        this.failOver(target);
        throw new UnreachableError(`${target}: ${outcome.why}`);
      case 'lost':
        this.failOver(target);
        throw new UnknownOutcomeError(`${target}: ${outcome.why}`);
      case 'answer': {
        if (outcome.status >= 200 && outcome.status < 300) return outcome.body as T;
        const err = answerError(outcome.status, outcome.body, target);
        const hint = (outcome.body as Partial<ErrorBody> | undefined)?.error?.leaderClientUrl;
        if (err.code === 'unknown-outcome') throw new UnknownOutcomeError(err.message);
        if (hint !== undefined && hint !== target) this.leaderUrl = normalizeUrl(hint);
        else if (retryableCodes.has(err.code) && err.code !== 'overloaded') this.failOver(target);
        throw err;
      }
    }
  }

  private async attempt(
    target: string,
    method: string,
    path: string,
    extra: { body?: unknown; headers?: Record<string, string> },
  ): Promise<Attempt> {
    const headers: Record<string, string> = { accept: 'application/json', ...extra.headers };
    if (extra.body !== undefined) headers['content-type'] = 'application/json';
    try {
      const res = await this.send(`${target}${path}`, {
        method,
        headers,
        ...(extra.body === undefined ? {} : { body: JSON.stringify(extra.body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = res.text;
      const leader = res.headers[HEADER.leader];
      const ok = res.status >= 200 && res.status < 300;
      if (typeof leader === 'string' && ok) this.leaderUrl = normalizeUrl(leader);
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        throw new QuorateError('bad-response', `${target}: answer is not JSON`, res.status);
      }
      return { kind: 'answer', status: res.status, body };
    } catch (err) {
      if (err instanceof QuorateError) throw err;
      const code = (err as { cause?: { code?: unknown } }).cause?.code;
      if (typeof code === 'string' && neverSentErrorCodes.has(code))
        return { kind: 'not-sent', why: code };
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      const cause = (err as { cause?: { message?: unknown } }).cause?.message;
      const detail = code ?? (typeof cause === 'string' ? cause : String(err));
      const why = timedOut ? `no answer within ${this.timeoutMs} ms` : String(detail);
      return { kind: 'lost', why };
    }
  }

  /** Stops sending to `target`: forget it as leader, or move on to the next endpoint. */
  private failOver(target: string): void {
    if (this.leaderUrl === target) this.leaderUrl = undefined;
    else if (this.endpoints[this.cursor % this.endpoints.length] === target) this.cursor++;
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffMs * 2 ** Math.min(attempt - 1, 20));
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }
}

function answerError(status: number, body: unknown, target: string): QuorateError {
  const error = (body as Partial<ErrorBody> | undefined)?.error;
  if (error === undefined || typeof error.code !== 'string') {
    return new QuorateError(
      'bad-response',
      `${target}: HTTP ${status} without an error body`,
      status,
    );
  }
  return new QuorateError(error.code, error.message, status);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function base64Of(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function keyPath(key: string): string {
  if (key.length === 0) throw new QuorateError('invalid-request', 'a key must not be empty');
  return `/v1/kv/${encodeURIComponent(key)}`;
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) search.set(name, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

function normalizeUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new RangeError(`endpoint must be an http(s) URL, got '${url}'`);
  }
  return parsed.origin + parsed.pathname.replace(/\/+$/, '');
}

function positive(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

/** 53 random bits: two clients picking the same session would break exactly-once. */
function randomSession(): number {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  const high = (words[0] as number) & 0x1f_ffff;
  const session = high * 2 ** 32 + (words[1] as number);
  return session === 0 ? 1 : session;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
