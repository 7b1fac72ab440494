import { AsyncResource } from 'node:async_hooks';
import {
  type handleUnaryCall,
  type Metadata,
  type MethodDefinition,
  type Server,
  type ServerDuplexStream,
  status,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { AuthOp, AuthPermission, PermType } from '../../kv/auth.ts';
import type { KeyRange } from '../../kv/ops.ts';
import { type AuthGate, AuthRefusedError, type Caller, type EdgeAuthCode } from '../auth.ts';
import { authStatusOf, EtcdError, toEtcdError } from './errors.ts';
import { storeBytesOf, wireBytesOf } from './keys.ts';
import type {
  RangeRequest,
  RequestOp,
  ResponseHeader,
  TxnRequest,
  WatchRequest,
  WatchResponse,
} from './types.ts';

/**
 * etcd's auth on the gRPC API: the Auth service, and the guard every other service's calls
 * pass through. The guard is installed once on the server (`guardServer`), so the KV, Watch,
 * Lease, Cluster and Maintenance handlers know nothing of it: it reads the caller's token
 * from the `token` metadata (as etcdctl and the etcd3 client send it), refuses what the
 * caller may not do with etcd's codes, and runs the handler with the caller in the gate's
 * async context, so the writes it makes go out as that user and the state machine checks
 * them again where they apply (src/kv/machine.ts).
 */

/** What a method needs of its caller while auth is on. */
type Policy =
  /** Nothing (Authenticate, AuthStatus). */
  | 'open'
  /** A known user. */
  | 'user'
  /** The root role. */
  | 'admin'
  /** Checked by the state machine where it applies (auth requests through the log). */
  | 'applied'
  /** Read (and write) permission on the keys of the request, checked here. */
  | 'keys';

const policies: Readonly<Record<string, Policy>> = {
  '/etcdserverpb.KV/Range': 'keys',
  '/etcdserverpb.KV/Put': 'keys',
  '/etcdserverpb.KV/DeleteRange': 'keys',
  '/etcdserverpb.KV/Txn': 'keys',
  '/etcdserverpb.KV/Compact': 'admin',
  '/etcdserverpb.Watch/Watch': 'keys',
  '/etcdserverpb.Lease/LeaseGrant': 'user',
  '/etcdserverpb.Lease/LeaseRevoke': 'user',
  '/etcdserverpb.Lease/LeaseKeepAlive': 'user',
  '/etcdserverpb.Lease/LeaseTimeToLive': 'user',
  '/etcdserverpb.Lease/LeaseLeases': 'user',
  '/etcdserverpb.Cluster/MemberList': 'user',
  '/etcdserverpb.Maintenance/Status': 'user',
  '/etcdserverpb.Maintenance/Alarm': 'user',
  '/etcdserverpb.Auth/Authenticate': 'open',
  '/etcdserverpb.Auth/AuthStatus': 'open',
};

/** Methods not named above (member changes, maintenance, auth management) need the root role. */
function policyOf(path: string): Policy {
  if (path.startsWith('/etcdserverpb.Auth/')) return policies[path] ?? 'applied';
  return policies[path] ?? 'admin';
}

function toStatus(err: unknown, kind: 'read' | 'write'): EtcdError {
  return toEtcdError(err, kind);
}

function tokenOf(metadata: Metadata): string | undefined {
  const values = metadata.get('token');
  const first = values[0];
  if (first === undefined) return undefined;
  return typeof first === 'string' ? first : first.toString();
}

function rangeOf(key: Buffer, rangeEnd: Buffer | undefined): KeyRange {
  const end = rangeEnd === undefined ? '' : storeBytesOf(rangeEnd);
  return end === '' ? { key: storeBytesOf(key) } : { key: storeBytesOf(key), rangeEnd: end };
}

/** The key ranges a KV request reads and writes (a txn: its compares and ops, nested too). */
function keysOfRequest(path: string, req: unknown): { reads: KeyRange[]; writes: KeyRange[] } {
  const reads: KeyRange[] = [];
  const writes: KeyRange[] = [];
  const put = (r: { key: Buffer; prev_kv?: boolean }) => {
    writes.push({ key: storeBytesOf(r.key) });
    if (r.prev_kv === true) reads.push({ key: storeBytesOf(r.key) });
  };
  const del = (r: { key: Buffer; range_end: Buffer; prev_kv?: boolean }) => {
    writes.push(rangeOf(r.key, r.range_end));
    if (r.prev_kv === true) reads.push(rangeOf(r.key, r.range_end));
  };
  const txn = (t: TxnRequest) => {
    for (const c of t.compare) reads.push(rangeOf(c.key, (c as { range_end?: Buffer }).range_end));
    for (const op of [...t.success, ...t.failure]) requestOp(op);
  };
  const requestOp = (op: RequestOp) => {
    if (op.request_range) reads.push(rangeOf(op.request_range.key, op.request_range.range_end));
    if (op.request_put) put(op.request_put);
    if (op.request_delete_range) del(op.request_delete_range);
    if (op.request_txn) txn(op.request_txn);
  };
  switch (path) {
    case '/etcdserverpb.KV/Range': {
      const r = req as RangeRequest;
      reads.push(rangeOf(r.key, r.range_end));
      break;
    }
    case '/etcdserverpb.KV/Put':
      put(req as { key: Buffer; prev_kv?: boolean });
      break;
    case '/etcdserverpb.KV/DeleteRange':
      del(req as { key: Buffer; range_end: Buffer; prev_kv?: boolean });
      break;
    case '/etcdserverpb.KV/Txn':
      txn(req as TxnRequest);
      break;
  }
  return { reads, writes };
}

/**
 * Refuses (throws) what `caller` may not do by `policy`, against this node's applied auth
 * state. Writes are checked again where they apply; this check answers at once.
 */
async function check(gate: AuthGate, caller: Caller, path: string, req: unknown): Promise<void> {
  if (refusal(gate, caller, path, req) === undefined) return;
  await gate.confirm();
  const refused = refusal(gate, caller, path, req);
  if (refused !== undefined) throw new AuthRefusedError(refused);
}

function refusal(
  gate: AuthGate,
  caller: Caller,
  path: string,
  req: unknown,
): EdgeAuthCode | undefined {
  const view = gate.engine.authView?.();
  if (view === undefined || !view.isEnabled) return undefined;
  // etcd: reading alarms needs a user, raising or clearing one the root role.
  const alarmChange =
    path === '/etcdserverpb.Maintenance/Alarm' && ((req as { action?: number }).action ?? 0) !== 0;
  const policy = alarmChange ? 'admin' : policyOf(path);
  let refused: { code: EdgeAuthCode } | undefined;
  switch (policy) {
    case 'open':
    case 'applied':
      return undefined;
    case 'user':
      refused = view.checkUser(caller.user);
      break;
    case 'admin':
      refused = view.checkAdmin(caller.user);
      break;
    case 'keys': {
      if (path === '/etcdserverpb.Watch/Watch') {
        refused = view.checkUser(caller.user);
        break;
      }
      const { reads, writes } = keysOfRequest(path, req);
      refused = view.checkUser(caller.user);
      for (const r of reads) refused ??= view.checkRange(caller.user, r, 'read');
      for (const w of writes) refused ??= view.checkRange(caller.user, w, 'write');
      break;
    }
  }
  return refused?.code;
}

/**
 * Installs the guard: every service added to `server` from now on has each handler wrapped.
 * `header` makes the header of a refused watch's response.
 */
export function guardServer(server: Server, gate: AuthGate, header: () => ResponseHeader): void {
  const addService = server.addService.bind(server);
  server.addService = (service, implementation) => {
    const guarded: UntypedServiceImplementation = {};
    for (const [method, handler] of Object.entries(implementation)) {
      const def = service[method] as MethodDefinition<object, object> | undefined;
      guarded[method] = def === undefined ? handler : guard(gate, def, handler, header);
    }
    addService(service, guarded);
  };
}

function guard(
  gate: AuthGate,
  def: MethodDefinition<object, object>,
  handler: UntypedHandleCall,
  header: () => ResponseHeader,
): UntypedHandleCall {
  const path = def.path;
  if (!def.requestStream && !def.responseStream) {
    const unary = handler as handleUnaryCall<object, object>;
    return ((call, callback) => {
      // Auth off and no token: the slow path would name the anonymous caller and refuse
      // nothing. Its AsyncLocalStorage.run would also switch on Node's promise hooks for
      // the whole process (every promise of consensus and the WAL then pays for context
      // propagation), so it is skipped; `exit` is a plain call while the storage was never
      // entered, and otherwise leaves no earlier caller's store visible.
      if (!gate.enabled && tokenOf(call.metadata) === undefined) {
        gate.current.exit(() => unary(call, callback));
        return;
      }
      gate
        .identify(tokenOf(call.metadata))
        .then(async (caller) => {
          await check(gate, caller, path, call.request);
          return caller;
        })
        .then(
          (caller) => gate.current.run(caller, () => unary(call, callback)),
          (err: unknown) => callback(toStatus(err, 'read').toStatus()),
        );
    }) as handleUnaryCall<object, object>;
  }
  // Streams: identify once, at the start; each listener the handler registers runs as the caller.
  return ((call: ServerDuplexStream<object, object>) => {
    gate
      .identify(tokenOf(call.metadata))
      .then(async (caller) => {
        await check(gate, caller, path, {});
        return caller;
      })
      .then(
        (caller) =>
          gate.current.run(caller, () => {
            bindListeners(call, gate, caller, path, header);
            (handler as (c: ServerDuplexStream<object, object>) => void)(call);
          }),
        (err: unknown) => call.emit('error', errorOf(toStatus(err, 'read'))),
      );
  }) as UntypedHandleCall;
}

function errorOf(err: EtcdError): Error {
  return Object.assign(new Error(err.message), err.toStatus());
}

/**
 * Listeners the handler adds run in the caller's context (EventEmitters call them in the
 * emitter's); a watch create outside the caller's read permission is answered here as etcd
 * does (created and canceled at once, "permission denied") and never reaches the handler.
 */
function bindListeners(
  call: ServerDuplexStream<object, object>,
  gate: AuthGate,
  caller: Caller,
  path: string,
  header: () => ResponseHeader,
): void {
  const on = call.on.bind(call);
  const wrap = (event: string | symbol, listener: (...args: unknown[]) => void) => {
    const bound = AsyncResource.bind(listener);
    if (event !== 'data' || path !== '/etcdserverpb.Watch/Watch') return bound;
    return (msg: unknown) => {
      const create = (msg as WatchRequest).create_request;
      if (create !== undefined && create !== null && gate.enabled) {
        const view = gate.engine.authView?.();
        const denied = view?.checkRange(caller.user, rangeOf(create.key, create.range_end), 'read');
        if (denied !== undefined) {
          const refused: WatchResponse = {
            header: header(),
            watch_id: -1,
            created: true,
            canceled: true,
            compact_revision: 0,
            cancel_reason: authStatusOf(denied.code).message,
            fragment: false,
            events: [],
          };
          call.write(refused);
          return;
        }
      }
      bound(msg);
    };
  };
  const patched = (event: string | symbol, listener: (...args: unknown[]) => void) => {
    on(event, wrap(event, listener));
    return call;
  };
  call.on = patched as typeof call.on;
  call.addListener = patched as typeof call.addListener;
}

// ---------------------------------------------------------------------------------------
// The Auth service

const permTypes: readonly PermType[] = ['read', 'write', 'readwrite'];

interface Named {
  readonly name: string;
}

/** The Auth service's handlers, each an auth op through the log as the caller. */
export function authService(
  gate: AuthGate,
  header: () => ResponseHeader,
): Record<string, UntypedHandleCall> {
  const caller = (): Caller => gate.current.getStore() ?? { user: '' };
  const run = async (op: AuthOp) => {
    if (!gate.supported) throw new EtcdError(status.UNIMPLEMENTED, 'quorate: auth on this engine');
    return gate.call(caller(), op);
  };
  const done = async (op: AuthOp) => {
    await run(op);
    return { header: header() };
  };
  const unary =
    <Req>(fn: (req: Req) => Promise<object>): handleUnaryCall<Req, object> =>
    (call, callback) => {
      Promise.resolve(call.request)
        .then(fn)
        .then(
          (res) => callback(null, res),
          (err: unknown) => callback(toStatus(err, 'write').toStatus()),
        );
    };
  const password = async (req: { password: string; options?: { no_password?: boolean } | null }) =>
    req.options?.no_password === true ? null : gate.hashPassword(req.password);
  return {
    Authenticate: unary(async (req: Named & { password: string }) => {
      const { token } = await gate.authenticate(req.name, req.password);
      return { header: header(), token };
    }),
    AuthStatus: unary(async () => {
      const r = await run({ f: 'authStatus' });
      if (r.f !== 'authStatus') throw new Error(`answered '${r.f}'`);
      return { header: header(), enabled: r.enabled, authRevision: r.revision };
    }),
    AuthEnable: unary(() => done({ f: 'authEnable' })),
    AuthDisable: unary(() => done({ f: 'authDisable' })),
    UserAdd: unary(
      async (req: Named & { password: string; options?: { no_password?: boolean } | null }) =>
        done({ f: 'userAdd', name: req.name, password: await password(req) }),
    ),
    UserGet: unary(async (req: Named) => {
      const r = await run({ f: 'userGet', name: req.name });
      if (r.f !== 'userGet') throw new Error(`answered '${r.f}'`);
      return { header: header(), roles: r.roles };
    }),
    UserList: unary(async () => {
      const r = await run({ f: 'userList' });
      if (r.f !== 'userList') throw new Error(`answered '${r.f}'`);
      return { header: header(), users: r.users };
    }),
    UserDelete: unary((req: Named) => done({ f: 'userDelete', name: req.name })),
    UserChangePassword: unary(async (req: Named & { password: string }) =>
      done({
        f: 'userChangePassword',
        name: req.name,
        password: await gate.hashPassword(req.password),
      }),
    ),
    UserGrantRole: unary((req: { user: string; role: string }) =>
      done({ f: 'userGrantRole', user: req.user, role: req.role }),
    ),
    UserRevokeRole: unary((req: Named & { role: string }) =>
      done({ f: 'userRevokeRole', name: req.name, role: req.role }),
    ),
    RoleAdd: unary((req: Named) => done({ f: 'roleAdd', name: req.name })),
    RoleGet: unary(async (req: { role: string }) => {
      const r = await run({ f: 'roleGet', role: req.role });
      if (r.f !== 'roleGet') throw new Error(`answered '${r.f}'`);
      return { header: header(), perm: r.permissions.map(wirePermission) };
    }),
    RoleList: unary(async () => {
      const r = await run({ f: 'roleList' });
      if (r.f !== 'roleList') throw new Error(`answered '${r.f}'`);
      return { header: header(), roles: r.roles };
    }),
    RoleDelete: unary((req: { role: string }) => done({ f: 'roleDelete', role: req.role })),
    RoleGrantPermission: unary(
      (req: Named & { perm?: { permType: number; key: Buffer; range_end: Buffer } | null }) => {
        const perm = req.perm;
        const permType = perm === undefined || perm === null ? undefined : permTypes[perm.permType];
        if (perm === undefined || perm === null || permType === undefined) {
          throw new EtcdError(status.INVALID_ARGUMENT, 'etcdserver: permission not given');
        }
        const granted: AuthPermission = {
          permType,
          key: storeBytesOf(perm.key),
          rangeEnd: storeBytesOf(perm.range_end),
        };
        return done({ f: 'roleGrantPermission', name: req.name, perm: granted });
      },
    ),
    RoleRevokePermission: unary((req: { role: string; key: Buffer; range_end: Buffer }) =>
      done({
        f: 'roleRevokePermission',
        role: req.role,
        key: storeBytesOf(req.key),
        rangeEnd: storeBytesOf(req.range_end),
      }),
    ),
  };
}

function wirePermission(p: AuthPermission): { permType: number; key: Buffer; range_end: Buffer } {
  return {
    permType: permTypes.indexOf(p.permType),
    key: wireBytesOf(p.key),
    range_end: wireBytesOf(p.rangeEnd),
  };
}
