import { createHash } from 'node:crypto';
import {
  type handleBidiStreamingCall,
  type handleUnaryCall,
  type MethodDefinition,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type UntypedHandleCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { NodeId } from '../../kernel/ids.ts';
import { AuthGate, type AuthGateOptions, callerEngine } from '../auth.ts';
import type { KvEngine } from '../engine.ts';
import type { Logger } from '../logger.ts';
import { authService, guardServer } from './auth.ts';
import {
  alarm,
  type ClusterContext,
  maintenanceStatus,
  memberAdd,
  memberList,
  memberPromote,
  memberRemove,
} from './cluster.ts';
import { headerOf } from './context.ts';
import { type EtcdError, toEtcdError, unimplemented } from './errors.ts';
import { compact, deleteRange, put, range } from './kv.ts';
import { leaseGrant, leaseKeepAlive, leaseLeases, leaseRevoke, leaseTimeToLive } from './lease.ts';
import { type EtcdServiceName, etcdService } from './proto.ts';
import { txn } from './txn.ts';
import type {
  LeaseGrantRequest,
  LeaseIdRequest,
  LeaseTimeToLiveRequest,
  ResponseHeader,
  WatchRequest,
  WatchResponse,
} from './types.ts';
import { type WatchLimits, WatchSession } from './watch.ts';

/** The etcd API version whose .proto files (proto/) this front end serves. */
export const ETCD_API_VERSION = '3.5.0';

export interface EtcdServerOptions {
  readonly engine: KvEngine;
  /** The cluster's shared secret: its hash is the cluster_id every member reports. */
  readonly clusterSecret: string;
  /** quorate's version, reported by Status after the etcd API version. */
  readonly version: string;
  readonly dataDir?: string;
  readonly tls?: {
    readonly key: string | Buffer;
    readonly cert: string | Buffer;
    readonly ca?: string | Buffer;
  };
  readonly grpcUrls?: ReadonlyMap<NodeId, string>;
  readonly logger?: Logger;
  readonly rangeKeysMax?: number;
  readonly keyLengthMax?: number;
  readonly valueLengthMax?: number;
  readonly watch?: Partial<WatchLimits>;
  readonly relayTimeoutMs?: number;
  /** On close, how long calls in flight may take before they are cut. */
  readonly closeGraceMs?: number;
  /** Token lifetime and hashing cost of etcd's auth (on only once enabled, as in etcd). */
  readonly auth?: Omit<AuthGateOptions, 'secret'>;
}

export interface EtcdServer {
  /** Starts listening; resolves with the URL clients dial (port 0 picks a free one). */
  listen(host: string, port: number): Promise<string>;
  close(): Promise<void>;
  readonly address: string | undefined;
}

/** A stable 48-bit id for the cluster, the same on every member, revealing nothing of the secret. */
export function clusterIdOf(secret: string): number {
  const digest = createHash('sha256').update(`quorate cluster id\0${secret}`).digest();
  return digest.readUIntBE(0, 6);
}

const defaults = {
  rangeKeysMax: 1000,
  keyLengthMax: 1024,
  valueLengthMax: 1024 * 1024,
  relayTimeoutMs: 5000,
  closeGraceMs: 2000,
  watchesPerStreamMax: 1000,
  backlogMax: 1000,
  progressNotifyMs: 600_000,
} as const;

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
  }
  return value;
}

/**
 * grpc-js's server options. Channelz (grpc-js's live call and socket statistics, on by
 * default) counts and timestamps every call and message, and nothing here reads it: off.
 */
export const grpcServerOptions = { 'grpc.enable_channelz': 0 } as const;

type Kind = 'read' | 'write';

/** A unary handler over an async function; rejections become etcd's statuses. */
function unary<Req, Res>(
  kind: Kind,
  fn: (req: Req) => Promise<Res> | Res,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toEtcdError(err, kind).toStatus()),
      );
  };
}

/** Every method of `service` that `impl` lacks answers Unimplemented, naming it. */
function complete(
  name: EtcdServiceName,
  impl: Record<string, UntypedHandleCall>,
  missing: (method: string) => EtcdError,
): UntypedServiceImplementation {
  const out: UntypedServiceImplementation = { ...impl };
  const service = etcdService(name);
  for (const [method, def] of Object.entries(service)) {
    if (method in out) continue;
    out[method] = refuser(def, missing(method));
  }
  return out;
}

function refuser(def: MethodDefinition<object, object>, err: EtcdError): UntypedHandleCall {
  const status = () => Object.assign(new Error(err.message), err.toStatus());
  if (def.requestStream && def.responseStream) {
    return ((call: ServerDuplexStream<object, object>) =>
      call.emit('error', status())) as UntypedHandleCall;
  }
  if (def.responseStream) {
    return ((call: { emit(e: 'error', v: Error): void }) =>
      call.emit('error', status())) as UntypedHandleCall;
  }
  return ((_call: unknown, callback: (e: Error) => void) =>
    callback(status())) as UntypedHandleCall;
}

/** etcd's v3 gRPC API over one engine. No globals: several may share a process. */
export function createEtcdServer(options: EtcdServerOptions): EtcdServer {
  const watchLimits: WatchLimits = {
    watchesPerStreamMax: positive(
      'watchesPerStreamMax',
      options.watch?.watchesPerStreamMax ?? defaults.watchesPerStreamMax,
    ),
    backlogMax: positive('backlogMax', options.watch?.backlogMax ?? defaults.backlogMax),
    progressNotifyMs: positive(
      'progressNotifyMs',
      options.watch?.progressNotifyMs ?? defaults.progressNotifyMs,
    ),
  };
  let address: string | undefined;
  const gate = new AuthGate(options.engine, { ...options.auth, secret: options.clusterSecret });
  const ctx: ClusterContext = {
    // Writes go out as the caller the auth guard names, for the state machine to check.
    engine: callerEngine(gate),
    clusterId: clusterIdOf(options.clusterSecret),
    rangeKeysMax: positive('rangeKeysMax', options.rangeKeysMax ?? defaults.rangeKeysMax),
    keyLengthMax: positive('keyLengthMax', options.keyLengthMax ?? defaults.keyLengthMax),
    valueLengthMax: positive('valueLengthMax', options.valueLengthMax ?? defaults.valueLengthMax),
    relayTimeoutMs: positive('relayTimeoutMs', options.relayTimeoutMs ?? defaults.relayTimeoutMs),
    selfGrpcUrl: () => address,
    grpcUrls: options.grpcUrls ?? new Map(),
    tls: options.tls !== undefined,
    dataDir: options.dataDir,
    version: `${ETCD_API_VERSION}-quorate.${options.version}`,
    ca: options.tls?.ca === undefined ? undefined : String(options.tls.ca),
  };
  const sessions = new Set<WatchSession>();
  const header = (): ResponseHeader => headerOf(ctx, ctx.engine.status().revision);
  const server = new Server(grpcServerOptions);
  guardServer(server, gate, header);
  server.addService(
    etcdService('KV'),
    complete(
      'KV',
      {
        Range: unary('read', (req: Parameters<typeof range>[1]) => range(ctx, req)),
        Put: unary('write', (req: Parameters<typeof put>[1]) => put(ctx, req)),
        DeleteRange: unary('write', (req: Parameters<typeof deleteRange>[1]) =>
          deleteRange(ctx, req),
        ),
        Txn: unary('write', (req: Parameters<typeof txn>[1]) => txn(ctx, req)),
        Compact: unary('write', (req: Parameters<typeof compact>[1]) => compact(ctx, req)),
      },
      (m) => unimplemented(`KV.${m}`),
    ),
  );
  const watch: handleBidiStreamingCall<WatchRequest, WatchResponse> = (call) => {
    const session = new WatchSession(ctx, call, watchLimits);
    sessions.add(session);
    call.on('close', () => sessions.delete(session));
  };
  server.addService(
    etcdService('Watch'),
    complete('Watch', { Watch: watch }, (m) => unimplemented(m)),
  );
  server.addService(
    etcdService('Cluster'),
    complete(
      'Cluster',
      {
        MemberList: unary('read', () => memberList(ctx)),
        MemberAdd: unary('write', (req: Parameters<typeof memberAdd>[1]) => memberAdd(ctx, req)),
        MemberRemove: unary('write', (req: Parameters<typeof memberRemove>[1]) =>
          memberRemove(ctx, req),
        ),
        MemberPromote: unary('write', (req: Parameters<typeof memberPromote>[1]) =>
          memberPromote(ctx, req),
        ),
      },
      (m) => unimplemented(`Cluster.${m}`),
    ),
  );
  server.addService(
    etcdService('Maintenance'),
    complete(
      'Maintenance',
      {
        Status: unary('read', () => maintenanceStatus(ctx)),
        Alarm: unary('read', (req: Parameters<typeof alarm>[1]) => alarm(ctx, req)),
      },
      (m) => unimplemented(`Maintenance.${m}`),
    ),
  );
  server.addService(
    etcdService('Lease'),
    complete(
      'Lease',
      {
        LeaseGrant: unary('write', (req: LeaseGrantRequest) => leaseGrant(ctx, req)),
        LeaseRevoke: unary('write', (req: LeaseIdRequest) => leaseRevoke(ctx, req)),
        LeaseKeepAlive: leaseKeepAlive(ctx),
        LeaseTimeToLive: unary('read', (req: LeaseTimeToLiveRequest) => leaseTimeToLive(ctx, req)),
        LeaseLeases: unary('read', () => leaseLeases(ctx)),
      },
      (m) => unimplemented(`Lease.${m}`),
    ),
  );
  server.addService(
    etcdService('Auth'),
    complete('Auth', authService(gate, header), (m) => unimplemented(`Auth.${m}`)),
  );
  const credentials =
    options.tls === undefined
      ? ServerCredentials.createInsecure()
      : ServerCredentials.createSsl(
          null,
          [
            {
              private_key: Buffer.from(options.tls.key),
              cert_chain: Buffer.from(options.tls.cert),
            },
          ],
          false,
        );
  return {
    listen(host, port) {
      const h = host.includes(':') ? `[${host}]` : host;
      return new Promise((resolve, reject) => {
        server.bindAsync(`${h}:${port}`, credentials, (err, bound) => {
          if (err !== null) return reject(err);
          address = `${options.tls === undefined ? 'http' : 'https'}://${h}:${bound}`;
          options.logger?.info({ address }, 'etcd gRPC API listening');
          resolve(address);
        });
      });
    },
    close() {
      for (const s of sessions) s.close(true);
      return new Promise((resolve) => {
        const timer = setTimeout(
          () => server.forceShutdown(),
          options.closeGraceMs ?? defaults.closeGraceMs,
        );
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    get address() {
      return address;
    },
  };
}
