import { type handleBidiStreamingCall, type ServerDuplexStream, status } from '@grpc/grpc-js';
import type { KvResult } from '../../kv/machine.ts';
import { type EtcdContext, headerOf, writeOp } from './context.ts';
import { EtcdError, etcdErrors, kvErrorStatus, toEtcdError } from './errors.ts';
import { wireBytesOf } from './keys.ts';
import type {
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseIdRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
} from './types.ts';

/**
 * etcd's Lease service over the replicated state machine's leases (src/kv) and the
 * leader's lessor (src/replica/lessor.ts). Grants and revokes go through the log; a
 * keep-alive and a time-to-live are reads the router takes to the leader, whose lessor
 * restarts the lease's countdown or tells what is left of it. Nothing here decides expiry.
 */

/** The shortest TTL granted: etcd raises shorter ones to its minimum likewise. */
export const LEASE_TTL_MIN_SECONDS = 1;

/** Keep-alives of one stream waiting for their answer; more end the stream (a flood). */
export const KEEPALIVES_QUEUED_MAX = 1024;

/** Narrows a lease result to its kind; a machine refusal becomes etcd's error. */
function leaseResult<F extends KvResult['f']>(result: KvResult, f: F): Extract<KvResult, { f: F }> {
  if (result.f === 'error') throw kvErrorStatus(result);
  if (result.f !== f) throw new Error(`engine answered '${result.f}' to a '${f}'`);
  return result as Extract<KvResult, { f: F }>;
}

function checkId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 0) throw etcdErrors.leaseNotFound();
}

export async function leaseGrant(
  ctx: EtcdContext,
  req: LeaseGrantRequest,
): Promise<LeaseGrantResponse> {
  if (!Number.isSafeInteger(req.ID) || req.ID < 0) {
    throw new EtcdError(status.INVALID_ARGUMENT, 'quorate: a lease ID must be >= 0');
  }
  const ttl = Math.max(LEASE_TTL_MIN_SECONDS, Number.isSafeInteger(req.TTL) ? req.TTL : 0);
  const granted = leaseResult(
    await writeOp(ctx, { f: 'leaseGrant', id: req.ID, ttl }),
    'leaseGrant',
  );
  return { header: headerOf(ctx, granted.revision), ID: granted.id, TTL: granted.ttl, error: '' };
}

export async function leaseRevoke(
  ctx: EtcdContext,
  req: LeaseIdRequest,
): Promise<LeaseRevokeResponse> {
  checkId(req.ID);
  if (req.ID === 0) throw etcdErrors.leaseNotFound();
  const done = leaseResult(await writeOp(ctx, { f: 'leaseRevoke', id: req.ID }), 'leaseRevoke');
  return { header: headerOf(ctx, done.revision) };
}

/** One keep-alive: the TTL restarted, or 0 when the lease is gone (etcd's answer, no error). */
export async function leaseKeepAliveOnce(
  ctx: EtcdContext,
  req: LeaseIdRequest,
): Promise<LeaseKeepAliveResponse> {
  if (!Number.isSafeInteger(req.ID) || req.ID <= 0) {
    return { header: headerOf(ctx, ctx.engine.status().revision), ID: req.ID, TTL: 0 };
  }
  const result = await ctx.engine.read({ f: 'leaseKeepAlive', id: req.ID }, 'linearizable');
  if (result.f === 'error' && result.code === 'leaseNotFound') {
    return { header: headerOf(ctx, ctx.engine.status().revision), ID: req.ID, TTL: 0 };
  }
  const alive = leaseResult(result, 'leaseKeepAlive');
  return { header: headerOf(ctx, alive.revision), ID: alive.id, TTL: alive.ttl };
}

/**
 * The keep-alive stream: each request answered in order, one at a time. A refusal (no
 * leader, a timeout) ends the stream with its status: clients open a new one and go on.
 */
export function leaseKeepAlive(
  ctx: EtcdContext,
): handleBidiStreamingCall<LeaseIdRequest, LeaseKeepAliveResponse> {
  return (call: ServerDuplexStream<LeaseIdRequest, LeaseKeepAliveResponse>) => {
    const queue: LeaseIdRequest[] = [];
    let busy = false;
    let ended = false;
    const fail = (err: unknown) => {
      if (ended) return;
      ended = true;
      const e = toEtcdError(err, 'read');
      call.emit('error', Object.assign(new Error(e.message), e.toStatus()));
    };
    const pump = () => {
      if (busy || ended) return;
      const next = queue.shift();
      if (next === undefined) return;
      busy = true;
      leaseKeepAliveOnce(ctx, next).then(
        (res) => {
          busy = false;
          if (ended || call.cancelled) return;
          call.write(res);
          pump();
        },
        (err: unknown) => {
          busy = false;
          fail(err);
        },
      );
    };
    call.on('data', (req: LeaseIdRequest) => {
      if (ended) return;
      if (queue.length >= KEEPALIVES_QUEUED_MAX) {
        fail(etcdErrors.tooManyRequests(`more than ${KEEPALIVES_QUEUED_MAX} keep-alives queued`));
        return;
      }
      queue.push(req);
      pump();
    });
    call.on('end', () => {
      if (ended) return;
      ended = true;
      call.end();
    });
    call.on('cancelled', () => {
      ended = true;
    });
    call.on('error', () => {
      ended = true;
    });
  };
}

export async function leaseTimeToLive(
  ctx: EtcdContext,
  req: LeaseTimeToLiveRequest,
): Promise<LeaseTimeToLiveResponse> {
  const gone = (): LeaseTimeToLiveResponse => ({
    header: headerOf(ctx, ctx.engine.status().revision),
    ID: req.ID,
    TTL: -1,
    grantedTTL: 0,
    keys: [],
  });
  if (!Number.isSafeInteger(req.ID) || req.ID <= 0) return gone();
  const op = { f: 'leaseTimeToLive', id: req.ID, keys: req.keys } as const;
  const result = await ctx.engine.read(op, 'linearizable');
  // etcd answers an unknown lease with TTL -1, not an error (etcdctl: "already expired").
  if (result.f === 'error' && result.code === 'leaseNotFound') return gone();
  const lease = leaseResult(result, 'leaseTimeToLive');
  return {
    header: headerOf(ctx, lease.revision),
    ID: lease.id,
    TTL: lease.remainingTtl,
    grantedTTL: lease.grantedTtl,
    keys: lease.keys.map(wireBytesOf),
  };
}

export async function leaseLeases(ctx: EtcdContext): Promise<LeaseLeasesResponse> {
  const listed = leaseResult(
    await ctx.engine.read({ f: 'leaseLeases' }, 'linearizable'),
    'leaseLeases',
  );
  return { header: headerOf(ctx, listed.revision), leases: listed.leases.map((ID) => ({ ID })) };
}
