import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuthenticateRequest, AuthenticateResponse } from '../client/wire.ts';
import { prefixEnd } from '../kv/bytes.ts';
import type { CallerOp, KvOp } from '../kv/machine.ts';
import type { KeyRange } from '../kv/ops.ts';
import {
  type AuthGate,
  AuthRefusedError,
  type Caller,
  type EdgeAuthCode,
  isAuthCode,
} from './auth.ts';
import { bytesIn, encodingOf } from './bytes-edge.ts';
import { ApiError } from './errors.ts';

/**
 * etcd's auth on our HTTP API: `Authorization: Bearer <token>` (a token from
 * `POST /v1/auth/authenticate` or etcd's Authenticate: the same tokens serve both APIs),
 * checked before every key-value and membership route as the gRPC guard checks its calls;
 * writes go out as the caller, for the state machine to check again where they apply.
 */

const callers = new WeakMap<FastifyRequest, Caller>();

/** The op as the caller of `req` (nobody when the hook did not run: auth unsupported). */
export function asCaller(req: FastifyRequest, op: KvOp): KvOp {
  const user = callers.get(req)?.user ?? '';
  return op.f === 'asUser' ? op : { f: 'asUser', user, op: op as CallerOp };
}

/** An auth refusal as an HTTP answer: 401 when credentials are missing or bad, else 403. */
export function authApiError(code: EdgeAuthCode): ApiError {
  const message = new AuthRefusedError(code).message;
  switch (code) {
    case 'userEmpty':
    case 'invalidToken':
    case 'authFailed':
      return new ApiError(401, 'unauthenticated', message, { 'www-authenticate': 'Bearer' });
    case 'permissionDenied':
    case 'userNotFound':
      return new ApiError(403, 'permission-denied', message);
    default:
      return new ApiError(400, 'invalid-request', message);
  }
}

/** A machine's refusal of a write as the HTTP error, when it is an auth one. */
export function authResultError(code: string): ApiError | undefined {
  return isAuthCode(code) ? authApiError(code) : undefined;
}

type Need =
  | { readonly kind: 'open' }
  | { readonly kind: 'user' }
  | { readonly kind: 'admin' }
  | { readonly kind: 'keys'; readonly access: 'read' | 'write'; readonly range: KeyRange };

/** What a route needs of its caller while auth is on. */
function needOf(req: FastifyRequest): Need {
  const route = req.routeOptions.url ?? '';
  const method = req.method;
  const params = req.params as { key?: string };
  const query = req.query as { prefix?: string; encoding?: string };
  const enc = () => encodingOf(query);
  switch (route) {
    case '/v1/kv/:key':
    case '/v1/kv/:key/cas': {
      const key = bytesIn('key', params.key ?? '', enc());
      return { kind: 'keys', access: method === 'GET' ? 'read' : 'write', range: { key } };
    }
    case '/v1/kv':
    case '/v1/watch': {
      const prefix = bytesIn('prefix', query.prefix ?? '', enc());
      const range = { key: prefix, rangeEnd: prefix === '' ? '\0' : prefixEnd(prefix) };
      return { kind: 'keys', access: 'read', range };
    }
    case '/v1/auth/authenticate':
    case '/healthz':
    case '/metrics':
      return { kind: 'open' };
    default:
      if (route.startsWith('/v1/members')) return { kind: method === 'GET' ? 'user' : 'admin' };
      if (route.startsWith('/v1/')) return { kind: 'user' };
      // The dashboard's pages and assets: what they show comes through the routes above.
      return { kind: 'open' };
  }
}

function bearerOf(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (match === null)
    throw new ApiError(401, 'unauthenticated', 'Authorization must be "Bearer <token>"');
  return match[1];
}

function refusal(gate: AuthGate, caller: Caller, need: Need): EdgeAuthCode | undefined {
  const view = gate.engine.authView?.();
  if (view === undefined || !view.isEnabled) return undefined;
  switch (need.kind) {
    case 'open':
      return undefined;
    case 'user':
      return view.checkUser(caller.user)?.code;
    case 'admin':
      return view.checkAdmin(caller.user)?.code;
    case 'keys':
      return (view.checkUser(caller.user) ?? view.checkRange(caller.user, need.range, need.access))
        ?.code;
  }
}

/** The bearer check of one request: its caller remembered, or a refusal thrown. */
async function checkCaller(gate: AuthGate, req: FastifyRequest): Promise<void> {
  const need = needOf(req);
  let caller: Caller;
  try {
    caller = await gate.identify(bearerOf(req));
  } catch (err) {
    if (err instanceof AuthRefusedError) throw authApiError(err.code);
    throw err;
  }
  callers.set(req, caller);
  if (refusal(gate, caller, need) === undefined) return;
  await gate.confirm();
  const code = refusal(gate, caller, need);
  if (code !== undefined) throw authApiError(code);
}

/** Installs the bearer check on every route, and the authenticate route. */
export function registerAuth(app: FastifyInstance, gate: AuthGate): void {
  app.addHook('preHandler', (req, _reply, done) => {
    // Auth off and no token: the caller is nobody and every route is open. Answered without
    // a promise, as most clusters run: the async check cost every request an extra turn of
    // the event loop and ~2 % of a node's CPU (perf12 profile).
    if (req.headers.authorization === undefined && !gate.enabled) {
      done();
      return;
    }
    checkCaller(gate, req).then(() => done(), done);
  });
  app.post<{ Body: AuthenticateRequest }>(
    '/v1/auth/authenticate',
    {
      schema: {
        body: {
          type: 'object',
          required: ['name', 'password'],
          additionalProperties: false,
          properties: { name: { type: 'string' }, password: { type: 'string' } },
        },
      },
    },
    async (req): Promise<AuthenticateResponse> => {
      try {
        const { token } = await gate.authenticate(req.body.name, req.body.password);
        return { token };
      } catch (err) {
        if (err instanceof AuthRefusedError) {
          if (err.code === 'authNotEnabled')
            throw new ApiError(400, 'invalid-request', err.message);
          throw authApiError(err.code);
        }
        throw err;
      }
    },
  );
}
