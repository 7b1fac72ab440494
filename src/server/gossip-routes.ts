import Fastify, {
  type FastifyBaseLogger,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { gossipMsgTypes } from '../gossip/index.ts';
import type { PeerAddress } from '../runtime/transport/transport.ts';
import type { GossipAgent } from './gossip-agent.ts';
import type { FeedItem } from './gossip-feed.ts';
import type { GossipStore } from './gossip-store.ts';
import { registerStoreRoutes, storeMetricsText } from './gossip-store-routes.ts';
import { PromText } from './prometheus-text.ts';
import { parsePeerAddress } from './raft-members.ts';

/**
 * The gossip agent's HTTP API (JSON):
 *
 *   GET  /v1/status                 id, address, incarnation, health, mode, member counts
 *   GET  /v1/status?since=v&waitMs=t  the same once membershipVersion moves past v (long poll)
 *   GET  /v1/members                every member: id, address, status, incarnation, tags
 *   POST /v1/join   {seeds:[h:p]}   join through these seeds (after a leave, or to merge)
 *   POST /v1/leave  {}              graceful leave (the agent keeps serving the API)
 *   POST /v1/events {name,payload}  publish a user event; 413 too-large names the limit
 *   GET  /v1/events?from=n&waitMs=t received events from feed number n (long poll)
 *   GET  /v1/events/stream?from=n   the same as server-sent events
 *   GET  /metrics                   Prometheus text
 *
 * State-changing calls must be JSON and, when a browser sends an Origin, same-origin: a
 * page on another site can neither post a form here (no preflight for forms) nor pass the
 * Origin check, so it cannot make an agent leave or publish.
 */
export interface GossipServer {
  listen(host: string, port: number): Promise<string>;
  close(): Promise<void>;
}

const FEED_PAGE_MAX = 1_000;
const WAIT_MS_MAX = 60_000;
const SSE_HEARTBEAT_MS = 15_000;
/** Status long polls waiting at once; beyond it a poll answers at once. */
const STATUS_WAITERS_MAX = 256;

class BadRequest extends Error {}

function problem(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message } });
}

/** The origin check of state-changing calls (see the header comment). */
function refuseCrossSite(req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
  if (req.method === 'GET' || req.method === 'HEAD') return undefined;
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/json')) {
    return problem(reply, 415, 'unsupported-media-type', 'state-changing calls take a JSON body');
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== req.headers.host) {
      return problem(reply, 403, 'cross-origin', `origin ${origin} may not change this agent`);
    }
  }
  return undefined;
}

function intQuery(raw: unknown, name: string, dflt: number, max: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n > max) {
    throw new BadRequest(`${name} must be an integer in 0..${max}`);
  }
  return n;
}

function seedList(body: unknown): PeerAddress[] {
  const seeds = (body as { seeds?: unknown } | null)?.seeds;
  if (!Array.isArray(seeds) || seeds.length === 0 || seeds.length > 64) {
    throw new BadRequest('seeds must be a list of 1..64 host:port strings');
  }
  return seeds.map((s) => {
    const a = typeof s === 'string' ? parsePeerAddress(s) : undefined;
    if (a === undefined) throw new BadRequest(`seed ${JSON.stringify(s)} is not host:port`);
    return a;
  });
}

export function createGossipServer(
  agent: GossipAgent,
  logger: Logger,
  store?: GossipStore,
): GossipServer {
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024,
    // A store key is up to 256 UTF-8 bytes, percent-encoded up to three times as long.
    maxParamLength: 1_024,
  });
  app.removeContentTypeParser('text/plain');
  app.addHook('preHandler', async (req, reply) => {
    const refused = refuseCrossSite(req, reply);
    if (refused !== undefined) return refused;
    return undefined;
  });
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof BadRequest) return problem(reply, 400, 'invalid-request', err.message);
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    const message = err instanceof Error ? err.message : String(err);
    return problem(reply, status, status >= 500 ? 'internal' : 'invalid-request', message);
  });

  app.get('/v1/status', async (req) => {
    const q = req.query as Record<string, unknown>;
    if (q.since !== undefined) {
      const since = intQuery(q.since, 'since', 0, Number.MAX_SAFE_INTEGER);
      const waitMs = intQuery(q.waitMs, 'waitMs', 0, WAIT_MS_MAX);
      await agent.membershipChange(since, waitMs, STATUS_WAITERS_MAX);
    }
    return status(agent);
  });
  app.get('/v1/members', async () => ({ id: agent.id, members: agent.members() }));
  app.post('/v1/join', async (req, reply) => {
    const seeds = seedList(req.body);
    try {
      return { joined: await agent.join(seeds) };
    } catch (err) {
      return problem(reply, 503, 'no-seed', (err as Error).message);
    }
  });
  app.post('/v1/leave', async () => {
    await agent.leave();
    return { left: true };
  });
  app.post('/v1/events', async (req, reply) => {
    const body = req.body as { name?: unknown; payload?: unknown } | null;
    const name = body?.name;
    const payload = body?.payload ?? '';
    if (typeof name !== 'string' || name === '' || typeof payload !== 'string') {
      throw new BadRequest('an event needs a non-empty string name and a string payload');
    }
    const r = await agent.request({ type: 'publish', name, payload });
    if (r.type === 'published') return { origin: r.origin, seq: r.seq };
    if (r.type === 'refused' && r.reason.code === 'too-large') {
      const { limit, max, got } = r.reason;
      return problem(reply, 413, 'too-large', `${limit} is ${max} bytes, got ${got}`);
    }
    return problem(reply, 409, 'not-member', 'this agent is not in a cluster (left or joining)');
  });
  app.get('/v1/events', async (req) => {
    const q = req.query as Record<string, unknown>;
    const from = intQuery(q.from, 'from', agent.feed.next, Number.MAX_SAFE_INTEGER);
    const waitMs = intQuery(q.waitMs, 'waitMs', 0, WAIT_MS_MAX);
    let items = agent.feed.since(from, FEED_PAGE_MAX);
    if (items.length === 0 && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        const unlisten = agent.feed.listen(done);
        function done() {
          clearTimeout(timer);
          unlisten?.();
          resolve();
        }
        if (unlisten === undefined) done();
      });
      items = agent.feed.since(from, FEED_PAGE_MAX);
    }
    return { items, next: nextAfter(items, from) };
  });
  app.get('/v1/events/stream', (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const from = intQuery(q.from, 'from', agent.feed.next, Number.MAX_SAFE_INTEGER);
    stream(agent, req, reply, from);
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', 'text/plain; version=0.0.4');
    return metricsText(agent) + (store === undefined ? '' : storeMetricsText(store));
  });
  if (store !== undefined) registerStoreRoutes(app, store);

  let url: string | undefined;
  return {
    async listen(host, port) {
      await app.listen({ host, port });
      const a = app.server.address();
      if (a === null || typeof a === 'string') throw new Error('not a TCP listener');
      url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
      return url;
    },
    close: () => app.close(),
  };
}

function nextAfter(items: readonly FeedItem[], from: number): number {
  const last = items[items.length - 1];
  return last === undefined ? from : last.n + 1;
}

function stream(agent: GossipAgent, req: FastifyRequest, reply: FastifyReply, from: number): void {
  let next = from;
  const write = () => {
    const items = agent.feed.since(next, FEED_PAGE_MAX);
    for (const it of items)
      reply.raw.write(`id: ${it.n}\nevent: ${it.type}\ndata: ${JSON.stringify(it)}\n\n`);
    next = nextAfter(items, next);
  };
  const unlisten = agent.feed.listen(write);
  if (unlisten === undefined) {
    problem(reply, 503, 'too-many-readers', 'the event feed has its maximum of readers');
    return;
  }
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  write();
  const beat = setInterval(() => reply.raw.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
  req.raw.on('close', () => {
    clearInterval(beat);
    unlisten();
  });
}

function status(agent: GossipAgent) {
  const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of agent.core.memberRecords()) counts[m.status] = (counts[m.status] ?? 0) + 1;
  return {
    id: agent.id,
    address: agent.address,
    mode: agent.core.currentMode,
    incarnation: agent.core.selfIncarnation,
    health: agent.core.healthScore,
    members: counts,
    membershipVersion: agent.membershipVersion,
    eventsNext: agent.feed.next,
  };
}

/** Prometheus text exposition of the core's, the transport's and the agent's counters. */
export function metricsText(agent: GossipAgent): string {
  const s = agent.core.stats;
  const out = new PromText('quorate_gossip_');
  const metric = out.metric.bind(out);
  metric('probes_total', 'counter', 'Probes we sent.', [['', s.probes]]);
  metric('probes_failed_total', 'counter', 'Probes with no ack, direct or indirect.', [
    ['', s.failedProbes],
  ]);
  metric('suspicions_total', 'counter', 'Members we came to suspect.', [['', s.suspicions]]);
  metric('dead_verdicts_total', 'counter', 'Suspicions that expired into our own dead verdict.', [
    ['', agent.counters.verdicts],
  ]);
  metric('refutations_total', 'counter', 'False positives about us that we refuted.', [
    ['', s.refutations],
  ]);
  metric('pauses_total', 'counter', 'Our own process paused past a probe interval.', [
    ['', s.pauses],
  ]);
  metric(
    'push_pulls_total',
    'counter',
    'State exchanges we started, by reason.',
    Object.entries(agent.counters.pushPulls).map(([r, v]) => [`{reason="${r}"}`, v]),
  );
  metric('health', 'gauge', 'Our Lifeguard health score (0 best).', [['', agent.core.healthScore]]);
  metric('incarnation', 'gauge', 'Our incarnation.', [['', agent.core.selfIncarnation]]);
  const byStatus: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of agent.core.memberRecords()) byStatus[m.status] = (byStatus[m.status] ?? 0) + 1;
  metric(
    'members',
    'gauge',
    'Members by status, ourselves included.',
    Object.entries(byStatus).map(([st, v]) => [`{status="${st}"}`, v]),
  );
  const t = agent.transport;
  metric(
    'sent_bytes_total',
    'counter',
    'Bytes sent by message kind (seal or frame included).',
    gossipMsgTypes.map((k) => [`{kind="${k}"}`, t.sent[k].bytes]),
  );
  metric(
    'received_bytes_total',
    'counter',
    'Bytes received by message kind.',
    gossipMsgTypes.map((k) => [`{kind="${k}"}`, t.received[k].bytes]),
  );
  metric(
    'sent_messages_total',
    'counter',
    'Messages sent by kind.',
    gossipMsgTypes.map((k) => [`{kind="${k}"}`, t.sent[k].messages]),
  );
  metric(
    'received_messages_total',
    'counter',
    'Messages received by kind.',
    gossipMsgTypes.map((k) => [`{kind="${k}"}`, t.received[k].messages]),
  );
  metric(
    'datagrams_dropped_total',
    'counter',
    'Datagrams dropped on receipt, by reason.',
    Object.entries(t.datagramDrops()).map(([r, v]) => [`{reason="${r}"}`, v]),
  );
  metric(
    'streams_rejected_total',
    'counter',
    'Stream connections closed for a bad handshake or frame.',
    [['', t.rejectedStreams()]],
  );
  metric(
    'input_dropped_total',
    'counter',
    'Messages the core dropped, by reason.',
    Object.entries(s.dropped).map(([r, v]) => [`{reason="${r}"}`, v]),
  );
  metric('unaddressable_total', 'counter', 'Sends to a member whose address we do not know.', [
    ['', agent.counters.unaddressable],
  ]);
  return out.text();
}
