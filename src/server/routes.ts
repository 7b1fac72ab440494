import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  type CasResponse,
  type DeleteResponse,
  type GetResponse,
  HEADER,
  type HealthResponse,
  type ListResponse,
  type MembersResponse,
  type OkResponse,
  type PutResponse,
  SESSION_MAX,
  type StatusResponse,
} from '../client/wire.ts';
import { isNodeId } from '../kernel/ids.ts';
import type { KvCommand, KvOp, KvResult } from '../kv/machine.ts';
import { kvErrorMessage } from '../kv/ops.ts';
import { asCaller, authResultError } from './auth-routes.ts';
import { bytesIn, encodingOf, entryOrNull, entryOut, type WireEncoding } from './bytes-edge.ts';
import type { EngineStatus, KvEngine, ReadConsistency } from './engine.ts';
import { ApiError, type CallKind, engineError } from './errors.ts';
import type { ServerMetrics } from './metrics.ts';
import { type SchemaLimits, schemas } from './schemas.ts';
import type { WatchHub } from './watch.ts';

export interface RouteContext {
  readonly engine: KvEngine;
  readonly metrics: ServerMetrics;
  readonly hub: WatchHub;
  readonly limits: SchemaLimits & {
    readonly listLimitDefault: number;
    readonly listLimitMax: number;
  };
  /** Seconds a client should wait after no-leader, overloaded or unavailable. */
  readonly retryAfterSeconds: number;
}

type KeyParams = { key: string };
type Consistency = { consistency?: ReadConsistency; encoding?: WireEncoding };
type Encoding = { encoding?: WireEncoding };

/**
 * Runs an engine call and answers with its result, or with its rejection as a typed error
 * answer: the engine forwards calls to the leader over the peer protocol itself, and when it
 * cannot reach one it refuses naming the leader's URL (421), so the client goes there.
 * `leaderCall` marks calls the engine may have served at the leader.
 */
async function respond(
  ctx: RouteContext,
  reply: FastifyReply,
  kind: CallKind,
  call: () => Promise<unknown>,
  leaderCall = true,
): Promise<unknown> {
  try {
    const answer = await call();
    const leaderUrl = leaderCall ? ctx.engine.leaderHint?.() : undefined;
    if (leaderUrl !== undefined) reply.header(HEADER.leader, leaderUrl);
    return answer;
  } catch (err) {
    throw engineError(err, kind, ctx.retryAfterSeconds);
  }
}

/** The (session, seq) of a write from its headers: both or neither (session 0). */
function sessionOf(req: FastifyRequest): { session: number; seq: number } {
  const session = req.headers[HEADER.session];
  const seq = req.headers[HEADER.seq];
  if (session === undefined && seq === undefined) return { session: 0, seq: 0 };
  if (typeof session !== 'string' || typeof seq !== 'string') {
    throw new ApiError(400, 'invalid-request', `send both ${HEADER.session} and ${HEADER.seq}`);
  }
  const ids = { session: Number(session), seq: Number(seq) };
  if (ids.session > SESSION_MAX || ids.seq > SESSION_MAX) {
    throw new ApiError(400, 'invalid-request', `session and seq must be at most ${SESSION_MAX}`);
  }
  return ids;
}

/** Narrows a result to the kind the operation produces; `stale` is the client's error. */
function resultOf<F extends KvResult['f']>(result: KvResult, f: F): Extract<KvResult, { f: F }> {
  if (result.f === 'stale') {
    throw new ApiError(
      409,
      'stale-sequence',
      `seq is older than this session's last (${result.lastSeq}); the write was not applied`,
    );
  }
  if (result.f === 'error') {
    throw (
      authResultError(result.code) ?? new ApiError(400, 'invalid-request', kvErrorMessage(result))
    );
  }
  if (result.f !== f) throw new Error(`engine answered '${result.f}' to a '${f}'`);
  return result as Extract<KvResult, { f: F }>;
}

export function registerKvRoutes(app: FastifyInstance, ctx: RouteContext): void {
  registerKvWrites(app, ctx);
  registerKvReads(app, ctx);
}

function registerKvWrites(app: FastifyInstance, ctx: RouteContext): void {
  const s = schemas(ctx.limits);
  const write = (req: FastifyRequest, op: KvOp) => {
    const { session, seq } = sessionOf(req);
    const cmd: KvCommand = { session, seq, op: asCaller(req, op) };
    return ctx.engine.write(cmd);
  };
  app.put<{ Params: KeyParams; Body: { value: string }; Querystring: Encoding }>(
    '/v1/kv/:key',
    { schema: s.put },
    (req, reply) =>
      respond(ctx, reply, 'write', async (): Promise<PutResponse> => {
        const enc = encodingOf(req.query);
        const key = bytesIn('key', req.params.key, enc);
        const op = { f: 'put', key, value: bytesIn('value', req.body.value, enc) } as const;
        const { revision, version } = resultOf(await write(req, op), 'put');
        return { revision, version };
      }),
  );
  app.delete<{ Params: KeyParams; Querystring: Encoding }>(
    '/v1/kv/:key',
    { schema: s.delete },
    (req, reply) =>
      respond(ctx, reply, 'write', async (): Promise<DeleteResponse> => {
        const key = bytesIn('key', req.params.key, encodingOf(req.query));
        const { f: _, ...r } = resultOf(await write(req, { f: 'delete', key }), 'delete');
        return r;
      }),
  );
  app.post<{
    Params: KeyParams;
    Body: { expected?: string | null; expectedVersion?: number; value: string };
    Querystring: Encoding;
  }>('/v1/kv/:key/cas', { schema: s.cas }, (req, reply) =>
    respond(ctx, reply, 'write', async (): Promise<CasResponse> => {
      const enc = encodingOf(req.query);
      const op = casOp(bytesIn('key', req.params.key, enc), req.body, enc);
      const r = resultOf(await write(req, op), 'cas');
      return { ok: r.ok, entry: entryOrNull(r.entry, enc), revision: r.revision };
    }),
  );
}

function registerKvReads(app: FastifyInstance, ctx: RouteContext): void {
  const s = schemas(ctx.limits);
  app.get<{ Params: KeyParams; Querystring: Consistency }>(
    '/v1/kv/:key',
    { schema: s.get },
    (req, reply) => {
      const consistency = req.query.consistency ?? 'linearizable';
      return respond(
        ctx,
        reply,
        'read',
        async (): Promise<GetResponse> => {
          const enc = encodingOf(req.query);
          const op = { f: 'get', key: bytesIn('key', req.params.key, enc) } as const;
          const r = resultOf(await ctx.engine.read(op, consistency), 'get');
          return { entry: entryOrNull(r.entry, enc), revision: r.revision };
        },
        consistency === 'linearizable',
      );
    },
  );
  app.get<{ Querystring: { prefix?: string; limit?: string } & Consistency }>(
    '/v1/kv',
    { schema: s.list },
    (req, reply) => {
      const consistency = req.query.consistency ?? 'linearizable';
      return respond(
        ctx,
        reply,
        'read',
        async (): Promise<ListResponse> => {
          const limit =
            req.query.limit === undefined ? ctx.limits.listLimitDefault : Number(req.query.limit);
          if (limit < 1 || limit > ctx.limits.listLimitMax) {
            throw new ApiError(
              400,
              'invalid-request',
              `limit must be in 1..${ctx.limits.listLimitMax}`,
            );
          }
          const enc = encodingOf(req.query);
          const prefix = bytesIn('prefix', req.query.prefix ?? '', enc);
          const op = { f: 'list', prefix, limit } as const;
          const r = resultOf(await ctx.engine.read(op, consistency), 'list');
          return {
            entries: r.entries.map((e) => entryOut(e, enc)),
            more: r.more,
            revision: r.revision,
          };
        },
        consistency === 'linearizable',
      );
    },
  );
  app.get<{ Querystring: { prefix?: string; fromRevision?: string } & Encoding }>(
    '/v1/watch',
    { schema: s.watch },
    (req, reply) => {
      const lastEventId = req.headers['last-event-id'];
      const from =
        req.query.fromRevision ?? (typeof lastEventId === 'string' ? lastEventId : undefined);
      const fromRevision = from === undefined ? ctx.engine.status().revision : Number(from);
      const encoding = encodingOf(req.query);
      const prefix = bytesIn('prefix', req.query.prefix ?? '', encoding);
      ctx.hub.serve(reply, { prefix, fromRevision, encoding });
    },
  );
}

function casOp(
  key: string,
  body: { expected?: string | null; expectedVersion?: number; value: string },
  enc: WireEncoding,
): KvOp {
  const byValue = body.expected !== undefined;
  const byVersion = body.expectedVersion !== undefined;
  if (byValue === byVersion) {
    throw new ApiError(400, 'invalid-request', 'give exactly one of expected or expectedVersion');
  }
  if (body.expectedVersion !== undefined) {
    const value = bytesIn('value', body.value, enc);
    return { f: 'casVersion', key, expectedVersion: body.expectedVersion, value };
  }
  const expected =
    body.expected === undefined || body.expected === null
      ? null
      : bytesIn('expected', body.expected, enc);
  return { f: 'cas', key, expected, value: bytesIn('value', body.value, enc) };
}

export function statusJson(status: EngineStatus): StatusResponse {
  return {
    id: status.id,
    protocol: status.protocol,
    role: status.role,
    term: status.term,
    leader: status.leader,
    leaderClientUrl: status.leaderClientUrl ?? null,
    commitIndex: status.commitIndex,
    appliedIndex: status.appliedIndex,
    revision: status.revision,
    members: status.members.map((m) => ({ ...m })),
    progress: status.progress?.map((p) => ({ ...p })) ?? null,
  };
}

export function registerAdminRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const s = schemas(ctx.limits);
  const ok: OkResponse = { ok: true };
  app.get('/v1/status', async (): Promise<StatusResponse> => statusJson(ctx.engine.status()));
  app.get(
    '/v1/members',
    async (): Promise<MembersResponse> => ({ members: statusJson(ctx.engine.status()).members }),
  );
  // A membership change is a write the leader carries out; its answer names no leader.
  const change = (reply: FastifyReply, act: () => Promise<void>) =>
    respond(
      ctx,
      reply,
      'write',
      async () => {
        await act();
        return ok;
      },
      false,
    );
  app.post<{ Body: { id: number; peerAddress: string; clientUrl: string } }>(
    '/v1/members',
    { schema: s.addMember },
    (req, reply) => change(reply, () => ctx.engine.addLearner(req.body)),
  );
  app.post<{ Params: { id: string } }>(
    '/v1/members/:id/promote',
    { schema: s.member },
    (req, reply) => change(reply, () => ctx.engine.promote(memberId(req.params.id))),
  );
  app.delete<{ Params: { id: string } }>('/v1/members/:id', { schema: s.member }, (req, reply) =>
    change(reply, () => ctx.engine.remove(memberId(req.params.id))),
  );
  app.get('/healthz', async (): Promise<HealthResponse> => ({ ok: true, id: ctx.engine.id }));
  app.get('/metrics', async (_req, reply) => {
    ctx.metrics.recordStatus(ctx.engine.status());
    const { contentType, body } = await ctx.metrics.render();
    return reply.header('content-type', contentType).send(body);
  });
}

function memberId(raw: string): number {
  const id = Number(raw);
  if (!isNodeId(id)) throw new ApiError(400, 'invalid-request', `member id must be 1..2^32-1`);
  return id;
}
