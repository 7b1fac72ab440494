import type { FastifyInstance, FastifyReply } from 'fastify';
import { MERKLE_MSG_TYPES, type MerkleRefusal } from '../gossip/antientropy/index.ts';
import type { GossipStore, StoreEntryView } from './gossip-store.ts';
import { PromText } from './prometheus-text.ts';

/**
 * The anti-entropy store's HTTP API on a gossip agent (JSON; every answer says
 * `"consistency": "eventual"`: a read answers from this replica, which repair brings level
 * with the others within a few repair intervals once they can talk):
 *
 *   PUT    /v1/store/:key  {value, encoding?}  write (last writer wins by hybrid logical time)
 *   GET    /v1/store/:key                      this replica's entry, 404 if absent or deleted
 *   DELETE /v1/store/:key  {}                  write a tombstone
 *   GET    /v1/store?prefix=p&after=k&limit=n  live entries by key order
 *   GET    /v1/store-status                    entries, tombstones, tree root, pending, rates
 *   GET    /v1/store-watch?prefix=p            server-sent events: every entry this replica
 *                                             stores from now on (local or repaired), as
 *                                             `put` or `delete` with its version
 *
 * Keys are UTF-8 text in the path, or `?encoding=base64` for their bytes in base64 (which
 * must be UTF-8: the map's keys are strings). Values are text, or base64 with
 * `"encoding": "base64"` in the body; an answer carries a value that is not UTF-8 in base64
 * with `"encoding": "base64"`. Refusals: 413 too-large names the limit, 507 full, 429
 * rate-limited with Retry-After. The origin and JSON checks of gossip-routes.ts apply to
 * PUT and DELETE as to every state-changing call.
 */
const LIST_LIMIT_DEFAULT = 100;
const WATCHERS_MAX = 256;
const SSE_HEARTBEAT_MS = 15_000;
const LIST_LIMIT_MAX = 1_000;
/** A 16 KiB value in base64 with its JSON around it. */
const STORE_BODY_BYTES_MAX = 64 * 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

class StoreBadRequest extends Error {}

function problem(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message }, consistency: 'eventual' });
}

function fromBase64(field: string, text: string): Uint8Array {
  if (!BASE64.test(text)) throw new StoreBadRequest(`${field} is not standard base64`);
  return new Uint8Array(Buffer.from(text, 'base64'));
}

function keyOf(raw: string, encoding: unknown): string {
  if (encoding !== 'base64') return raw;
  try {
    return utf8Strict.decode(fromBase64('key', raw));
  } catch (err) {
    if (err instanceof StoreBadRequest) throw err;
    throw new StoreBadRequest('key bytes must be UTF-8');
  }
}

function valueOut(value: Uint8Array): { value: string; encoding?: 'base64' } {
  try {
    return { value: utf8Strict.decode(value) };
  } catch {
    return { value: Buffer.from(value).toString('base64'), encoding: 'base64' };
  }
}

function entryJson(e: StoreEntryView) {
  return {
    key: e.key,
    ...(e.value === undefined ? { deleted: true } : valueOut(e.value)),
    version: e.version,
  };
}

function refusal(reply: FastifyReply, r: MerkleRefusal): FastifyReply {
  switch (r.type) {
    case 'too-large':
      return problem(reply, 413, 'too-large', `${r.limit} is ${r.max} bytes, got ${r.bytes}`);
    case 'full':
      return problem(reply, 507, 'full', `${r.limit} is ${r.max} entries`);
    case 'rate-limited':
      reply.header('retry-after', String(Math.max(1, Math.ceil(r.retryAfterMs / 1_000))));
      return reply.code(429).send({
        error: {
          code: 'rate-limited',
          message: `${r.limit} is ${r.ratePerSecond} writes/s; retry in ${r.retryAfterMs} ms`,
        },
        retryAfterMs: r.retryAfterMs,
        consistency: 'eventual',
      });
    default:
      return r satisfies never;
  }
}

function intParam(raw: unknown, name: string, dflt: number, max: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || n < 1 || n > max) {
    throw new StoreBadRequest(`${name} must be an integer in 1..${max}`);
  }
  return n;
}

export function registerStoreRoutes(app: FastifyInstance, store: GossipStore): void {
  const guard = async <T>(reply: FastifyReply, f: () => Promise<T>): Promise<T | FastifyReply> => {
    try {
      return await f();
    } catch (err) {
      if (err instanceof StoreBadRequest)
        return problem(reply, 400, 'invalid-request', err.message);
      if ((err as Error).message === 'store stopped') {
        return problem(reply, 503, 'unavailable', 'the store is stopping');
      }
      throw err;
    }
  };

  app.put('/v1/store/:key', { bodyLimit: STORE_BODY_BYTES_MAX }, async (req, reply) =>
    guard(reply, async () => {
      const key = keyOf(
        (req.params as { key: string }).key,
        (req.query as { encoding?: unknown }).encoding,
      );
      const body = req.body as { value?: unknown; encoding?: unknown } | null;
      if (typeof body?.value !== 'string') throw new StoreBadRequest('a put needs a string value');
      const value =
        body.encoding === 'base64'
          ? fromBase64('value', body.value)
          : new TextEncoder().encode(body.value);
      const r = await store.request({ type: 'put', key, value });
      if (r.type === 'refused') return refusal(reply, r.refusal);
      if (r.type !== 'ok') throw new Error(`unexpected reply ${r.type}`);
      return { key, version: r.version, consistency: 'eventual' };
    }),
  );

  app.delete('/v1/store/:key', async (req, reply) =>
    guard(reply, async () => {
      const key = keyOf(
        (req.params as { key: string }).key,
        (req.query as { encoding?: unknown }).encoding,
      );
      const r = await store.request({ type: 'delete', key });
      if (r.type === 'refused') return refusal(reply, r.refusal);
      if (r.type !== 'ok') throw new Error(`unexpected reply ${r.type}`);
      return { key, version: r.version, deleted: true, consistency: 'eventual' };
    }),
  );

  app.get('/v1/store/:key', async (req, reply) =>
    guard(reply, async () => {
      const key = keyOf(
        (req.params as { key: string }).key,
        (req.query as { encoding?: unknown }).encoding,
      );
      const r = await store.request({ type: 'get', key });
      if (r.type !== 'value') throw new Error(`unexpected reply ${r.type}`);
      if (r.entry === undefined || r.entry.value === undefined) {
        return reply.code(404).send({
          error: { code: 'not-found', message: `no key ${JSON.stringify(key)} here` },
          ...(r.entry === undefined ? {} : { deleted: true, version: r.entry.version }),
          consistency: 'eventual',
        });
      }
      return { ...entryJson(r.entry), consistency: 'eventual' };
    }),
  );

  app.get('/v1/store', async (req, reply) =>
    guard(reply, async () => {
      const q = req.query as { prefix?: unknown; after?: unknown; limit?: unknown };
      const prefix = typeof q.prefix === 'string' ? q.prefix : '';
      const after = typeof q.after === 'string' ? q.after : undefined;
      const limit = intParam(q.limit, 'limit', LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX);
      const page = store.list(prefix, after, limit + 1);
      const more = page.length > limit;
      return {
        entries: page.slice(0, limit).map(entryJson),
        more,
        consistency: 'eventual',
      };
    }),
  );

  app.get('/v1/store-status', async () => storeStatus(store));
  app.get('/v1/store-watch', (req, reply) => {
    const q = req.query as { prefix?: unknown };
    const prefix = typeof q.prefix === 'string' ? q.prefix : '';
    const unlisten = store.listen((e) => {
      if (!e.key.startsWith(prefix)) return;
      const type = e.value === undefined ? 'delete' : 'put';
      reply.raw.write(
        `event: ${type}\ndata: ${JSON.stringify({ ...entryJson(e), consistency: 'eventual' })}\n\n`,
      );
    }, WATCHERS_MAX);
    if (unlisten === undefined) {
      problem(reply, 503, 'too-many-watchers', `the store has its ${WATCHERS_MAX} watchers`);
      return;
    }
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    reply.raw.write(': watching\n\n');
    const beat = setInterval(() => reply.raw.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
    req.raw.on('close', () => {
      clearInterval(beat);
      unlisten();
    });
  });
  if (store.unsafeTestingFaults) {
    // Test and bench only (--unsafe-store-faults): a partition of the store's repair traffic.
    app.post('/v1/store-faults', async (req, reply) =>
      guard(reply, async () => {
        const blocked = (req.body as { blocked?: unknown } | null)?.blocked;
        if (!Array.isArray(blocked) || !blocked.every((x) => Number.isInteger(x) && x >= 1)) {
          throw new StoreBadRequest('blocked must be a list of node ids');
        }
        store.blockPeers(blocked as number[]);
        return { blocked };
      }),
    );
  }
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/** What an operator (or a convergence check) compares across replicas. */
export function storeStatus(store: GossipStore) {
  const root = store.core.tree.rootSummary();
  return {
    id: store.core.id,
    kind: 'merkle',
    entries: root.count,
    tombstones: store.tombstones(),
    root: `${hex(root.hi)}${hex(root.lo)}`,
    leaves: store.core.tree.leafCount,
    pending: store.inFlight,
    log: { records: store.log.recordCount, bytes: store.log.byteCount },
    rates: store.currentRates,
    repair: {
      started: store.counters.repairsStarted,
      inSync: store.counters.inSync,
      bytes: store.repairBytes(),
      sentBytes: store.repairBytesSent(),
      sentModelBytes: store.repairModelBytesSent(),
      blocked: store.counters.blockedByFault,
    },
    dataBytes: store.dataBytes(),
    consistency: 'eventual',
  };
}

/** Prometheus text of the store's counters (appended to the agent's /metrics). */
export function storeMetricsText(store: GossipStore): string {
  const out = new PromText('quorate_store_');
  const metric = out.metric.bind(out);
  const c = store.counters;
  const byKind = (pick: (k: (typeof MERKLE_MSG_TYPES)[number]) => number): [string, number][] =>
    MERKLE_MSG_TYPES.map((k) => [`{kind="${k}"}`, pick(k)]);
  metric('entries', 'gauge', 'Entries held, tombstones included.', [['', store.core.tree.size]]);
  metric('repairs_started_total', 'counter', 'Repairs (round-trip chains) we started.', [
    ['', c.repairsStarted],
  ]);
  metric('repairs_in_sync_total', 'counter', 'Repairs that found both roots equal.', [
    ['', c.inSync],
  ]);
  metric(
    'repair_sent_messages_total',
    'counter',
    'Repair messages sent by kind (each is one leg of a round trip).',
    byKind((k) => store.sent[k].messages),
  );
  metric(
    'repair_received_messages_total',
    'counter',
    'Repair messages received by kind.',
    byKind((k) => store.received[k].messages),
  );
  metric(
    'repair_sent_bytes_total',
    'counter',
    'Repair bytes sent by kind, encoded.',
    byKind((k) => store.sent[k].bytes),
  );
  metric(
    'repair_received_bytes_total',
    'counter',
    'Repair bytes received by kind, encoded.',
    byKind((k) => store.received[k].bytes),
  );
  metric('writes_total', 'counter', 'Local writes acknowledged (durable).', [['', c.writes]]);
  metric('refused_total', 'counter', 'Local writes refused.', [['', c.refused]]);
  metric('delivered_total', 'counter', 'Entries stored, local and repaired.', [['', c.delivered]]);
  metric('collected_total', 'counter', 'Tombstones collected.', [['', c.collected]]);
  metric(
    'input_dropped_total',
    'counter',
    'Repair input the core dropped, by reason.',
    Object.entries(c.dropped).map(([r, v]) => [`{reason="${r}"}`, v]),
  );
  metric('undecodable_total', 'counter', 'Repair frames that did not decode.', [
    ['', c.undecodable],
  ]);
  return out.text();
}
