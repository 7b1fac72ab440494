import { AsyncLocalStorage } from 'node:async_hooks';
import { createHmac, hkdfSync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import {
  type AuthErrorCode,
  type AuthOp,
  authErrorCodes,
  authErrorMessage as authMessage,
  type PasswordHash,
} from '../kv/auth.ts';
import type { CallerOp, KvCommand, KvResult } from '../kv/machine.ts';
import type { KvEngine } from './engine.ts';

/**
 * The edge of etcd's auth, shared by the gRPC API and our HTTP API: what needs randomness, a
 * clock or a key, which the replicated store (src/kv/auth.ts) may not have. It hashes
 * passwords before they are proposed, checks them for Authenticate, and issues and verifies
 * tokens.
 *
 * A token is `payload.mac`: the user, the auth revision it was issued at and its expiry,
 * HMAC-SHA256 under a key derived from the cluster secret (like etcd's JWT tokens, and unlike
 * its simple tokens, any member verifies it without per-node state). It is void once
 * expired, once the user is gone, or once the user's password changed after it was issued
 * (the user's `since` revision).
 */

export interface AuthGateOptions {
  /** The cluster's shared secret; tokens are signed under a key derived from it. */
  readonly secret: string;
  /** How long a token is valid (etcd's simple tokens: 300 s). */
  readonly tokenTtlMs?: number;
  /** scrypt's cost parameter N for new hashes (a power of 2); verification uses the stored one. */
  readonly scryptCost?: number;
  /** How long a call whose token is newer than this node's auth state waits for it to catch up. */
  readonly catchUpMs?: number;
  /** Wall clock, ms (token expiry must mean the same on every member). */
  readonly now?: () => number;
}

/** A refusal at the edge, before anything is proposed: an auth store code, or the edge's own. */
export type EdgeAuthCode = AuthErrorCode | 'invalidToken' | 'authFailed';

export class AuthRefusedError extends Error {
  override readonly name = 'AuthRefusedError';
  constructor(readonly code: EdgeAuthCode) {
    super(edgeAuthMessage(code));
  }
}

export function edgeAuthMessage(code: EdgeAuthCode): string {
  switch (code) {
    case 'invalidToken':
      return 'etcdserver: invalid auth token';
    case 'authFailed':
      return 'etcdserver: authentication failed, invalid user ID or password';
    default:
      return authMessage(code);
  }
}

/** Who a call is from: '' = nobody (no credentials, or auth off). */
export interface Caller {
  readonly user: string;
}

const SCRYPT_BLOCK = 8;
const SCRYPT_PARALLEL = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const CATCH_UP_POLL_MS = 5;

function scryptAsync(
  password: string,
  salt: Buffer,
  cost: number,
  blockSize: number,
  parallelization: number,
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password,
      salt,
      HASH_BYTES,
      { N: cost, r: blockSize, p: parallelization, maxmem: 256 * cost * blockSize + 1024 * 1024 },
      (err, key) => (err === null ? resolve(key) : reject(err)),
    ),
  );
}

export class AuthGate {
  readonly tokenTtlMs: number;
  private readonly key: Buffer;
  private readonly scryptCost: number;
  private readonly catchUpMs: number;
  private readonly now: () => number;
  /** The caller of the gRPC call being served, across its promises (see server.ts). */
  readonly current = new AsyncLocalStorage<Caller>();

  constructor(
    readonly engine: KvEngine,
    options: AuthGateOptions,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', options.secret, '', 'quorate auth token v1', 32));
    this.tokenTtlMs = options.tokenTtlMs ?? 300_000;
    this.scryptCost = options.scryptCost ?? 16_384;
    this.catchUpMs = options.catchUpMs ?? 2_000;
    this.now = options.now ?? Date.now;
  }

  /** Whether this engine can serve auth at all. */
  get supported(): boolean {
    return this.engine.authView !== undefined;
  }

  get enabled(): boolean {
    return this.engine.authView?.().isEnabled ?? false;
  }

  async hashPassword(password: string): Promise<PasswordHash> {
    const salt = randomBytes(SALT_BYTES);
    const hash = await scryptAsync(password, salt, this.scryptCost, SCRYPT_BLOCK, SCRYPT_PARALLEL);
    return {
      scheme: 'scrypt',
      salt: salt.toString('base64'),
      hash: hash.toString('base64'),
      cost: this.scryptCost,
      blockSize: SCRYPT_BLOCK,
      parallelization: SCRYPT_PARALLEL,
    };
  }

  /**
   * An auth op through the log as `caller` (the machine checks the caller when it applies);
   * auth refusals are thrown as `AuthRefusedError`.
   */
  async call(caller: Caller, op: AuthOp): Promise<KvResult> {
    return this.write({ session: 0, seq: 0, op }, caller);
  }

  /** A write as `caller`: wrapped so the machine checks it; auth refusals thrown. */
  async write(cmd: KvCommand, caller: Caller): Promise<KvResult> {
    const inner = cmd.op.f === 'asUser' ? cmd.op.op : (cmd.op as CallerOp);
    const result = await this.engine.write({
      session: cmd.session,
      seq: cmd.seq,
      op: { f: 'asUser', user: caller.user, op: inner },
    });
    if (result.f === 'error' && isAuthCode(result.code)) throw new AuthRefusedError(result.code);
    return result;
  }

  /** etcd's Authenticate: the password checked against the hash at its place in the log. */
  async authenticate(name: string, password: string): Promise<{ token: string; revision: number }> {
    const found = await this.engine.write({
      session: 0,
      seq: 0,
      op: { f: 'authLookup', name },
    });
    if (found.f !== 'authLookup') throw new Error(`engine answered '${found.f}' to an authLookup`);
    if (!found.enabled) throw new AuthRefusedError('authNotEnabled');
    const stored = found.user?.password ?? null;
    if (found.user === null || stored === null || !(await this.verify(password, stored))) {
      throw new AuthRefusedError('authFailed');
    }
    return { token: this.sign(name, found.revision), revision: found.revision };
  }

  private async verify(password: string, stored: PasswordHash): Promise<boolean> {
    const expected = Buffer.from(stored.hash, 'base64');
    const got = await scryptAsync(
      password,
      Buffer.from(stored.salt, 'base64'),
      stored.cost,
      stored.blockSize,
      stored.parallelization,
    );
    return got.length === expected.length && timingSafeEqual(got, expected);
  }

  private sign(user: string, revision: number): string {
    const payload = Buffer.from(
      JSON.stringify({ u: user, r: revision, e: this.now() + this.tokenTtlMs }),
    ).toString('base64url');
    return `${payload}.${this.mac(payload)}`;
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }

  /**
   * Who presents `token` (undefined: none). While auth is off every call is let through as
   * nobody, as etcd does; a token is then still read if valid, so a write in flight as auth
   * is enabled keeps its user. While on, a bad, expired or void token is refused.
   */
  async identify(token: string | undefined): Promise<Caller> {
    const view = this.engine.authView?.();
    if (view === undefined || token === undefined || token === '') return { user: '' };
    const claims = this.claims(token);
    if (!view.isEnabled) return { user: claims?.u ?? '' };
    if (claims === undefined) throw new AuthRefusedError('invalidToken');
    await this.catchUp(claims.r);
    const user = this.engine.authView?.().user(claims.u);
    if (user === undefined || claims.r < user.since) throw new AuthRefusedError('invalidToken');
    return { user: claims.u };
  }

  private claims(token: string): { u: string; r: number; e: number } | undefined {
    const dot = token.indexOf('.');
    if (dot < 0) return undefined;
    const payload = token.slice(0, dot);
    const mac = Buffer.from(token.slice(dot + 1));
    const want = Buffer.from(this.mac(payload));
    if (mac.length !== want.length || !timingSafeEqual(mac, want)) return undefined;
    try {
      const c = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
      if (typeof c.u !== 'string' || typeof c.r !== 'number' || typeof c.e !== 'number') {
        return undefined;
      }
      if (c.e <= this.now()) return undefined;
      return { u: c.u, r: c.r, e: c.e };
    } catch {
      return undefined;
    }
  }

  /**
   * Waits (bounded) until this node has applied the auth state committed now: before a
   * refusal made on this node's view is given, so a lagging member does not refuse what a
   * change already committed elsewhere allows (a Multi-Paxos follower learns late).
   */
  async confirm(): Promise<void> {
    const r = await this.engine.write({ session: 0, seq: 0, op: { f: 'authStatus' } });
    if (r.f === 'authStatus') await this.catchUp(r.revision);
  }

  /** A token issued on a member ahead of this one: wait (bounded) until this one applied it. */
  private async catchUp(revision: number): Promise<void> {
    const until = this.now() + this.catchUpMs;
    while ((this.engine.authView?.().revision ?? 0) < revision && this.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, CATCH_UP_POLL_MS));
    }
  }
}

const AUTH_CODES: ReadonlySet<string> = new Set(authErrorCodes);

export function isAuthCode(code: string): code is AuthErrorCode {
  return AUTH_CODES.has(code);
}

/**
 * The engine as the callers of one API see it: every write goes out as the caller the gate's
 * async context names (nobody outside one), so the state machine checks it, and an auth
 * refusal comes back thrown. Everything else is the engine's own.
 */
export function callerEngine(gate: AuthGate): KvEngine {
  const engine = gate.engine;
  const write = (cmd: KvCommand) => gate.write(cmd, gate.current.getStore() ?? { user: '' });
  // Bound once: the gRPC handlers reach for the engine's methods on every call.
  const bound = new Map<string | symbol, unknown>();
  return new Proxy(engine, {
    get(target, prop, receiver) {
      if (prop === 'write') return write;
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      let fn = bound.get(prop);
      if (fn === undefined) {
        fn = value.bind(target);
        bound.set(prop, fn);
      }
      return fn;
    },
  });
}
