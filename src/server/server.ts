import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import { AuthGate, type AuthGateOptions } from './auth.ts';
import { registerAuth } from './auth-routes.ts';
import type { KvEngine } from './engine.ts';
import { ApiError, frameworkError } from './errors.ts';
import { type Logger, silentLogger } from './logger.ts';
import { ServerMetrics } from './metrics.ts';
import { registerAdminRoutes, registerKvRoutes } from './routes.ts';
import { parseJsonText, queryTextProblem } from './text.ts';
import { WatchHub } from './watch.ts';

/** PEM material for serving the client API over HTTPS. */
export interface ServerTls {
  readonly key: string | Buffer;
  readonly cert: string | Buffer;
}

export interface ServerOptions {
  readonly engine: KvEngine;
  /** Structured logger (see createLogger); none means silent. */
  readonly logger?: Logger;
  /** The node's metrics; pass the same object to the engine. A fresh one by default. */
  readonly metrics?: ServerMetrics;
  /** Largest request body; larger ones get 413. */
  readonly bodyBytesMax?: number;
  /** Longest key, in UTF-16 code units. */
  readonly keyLengthMax?: number;
  /** Longest value, in UTF-16 code units. */
  readonly valueLengthMax?: number;
  /** `limit` of a list that gives none, and the largest one accepted. */
  readonly listLimitDefault?: number;
  readonly listLimitMax?: number;
  /** Seconds a client should wait after no-leader, overloaded or unavailable. */
  readonly retryAfterSeconds?: number;
  readonly watchersMax?: number;
  readonly watchBacklogMax?: number;
  readonly watchHeartbeatMs?: number;
  /** On close, how long requests in flight may take to finish before connections are cut. */
  readonly closeGraceMs?: number;
  /** Serve HTTPS instead of HTTP. */
  readonly tls?: ServerTls;
  /** etcd's auth (bearer tokens); without it the API has none, as before auth existed. */
  readonly auth?: AuthGateOptions;
}

const defaults = {
  bodyBytesMax: 2 * 1024 * 1024,
  keyLengthMax: 1024,
  valueLengthMax: 1024 * 1024,
  listLimitDefault: 100,
  listLimitMax: 1000,
  retryAfterSeconds: 1,
  watchersMax: 1000,
  watchBacklogMax: 1000,
  watchHeartbeatMs: 15_000,
  closeGraceMs: 5000,
} as const;

type Settings = { -readonly [K in keyof typeof defaults]: number };

function settingsOf(options: ServerOptions): Settings {
  const settings: Settings = { ...defaults };
  for (const name of Object.keys(defaults) as (keyof Settings)[]) {
    const value = options[name] ?? defaults[name];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
    }
    settings[name] = value;
  }
  if (settings.listLimitDefault > settings.listLimitMax) {
    throw new RangeError('listLimitDefault must not exceed listLimitMax');
  }
  return settings;
}

export interface QuorateServer {
  /** Starts listening; resolves with the base URL (port 0 picks a free one). */
  listen(host: string, port: number): Promise<string>;
  /** Ends watch streams, stops accepting, and waits for open requests to finish. */
  close(): Promise<void>;
  /** The base URL once listening. */
  readonly address: string | undefined;
  readonly metrics: ServerMetrics;
}

/** The key-value service's HTTP API over one engine. No globals: several may share a process. */
export function createServer(options: ServerOptions): QuorateServer {
  const settings = settingsOf(options);
  const logger = options.logger ?? silentLogger();
  const metrics = options.metrics ?? new ServerMetrics();
  const tls = options.tls;
  // Fastify types an https instance apart from an http one; routes and hooks are the same.
  const https = tls === undefined ? {} : { https: { key: tls.key, cert: tls.cert } };
  const app: FastifyInstance = Fastify({
    ...(https as object),
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request at debug level comes from the onResponse hook instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: settings.bodyBytesMax,
    // A key is percent-encoded: one UTF-16 unit may take up to 9 bytes (%XX%XX%XX).
    routerOptions: { maxParamLength: settings.keyLengthMax * 9 },
    forceCloseConnections: 'idle',
    // A path that is not percent-encoded UTF-8 (`/v1/kv/%FF`) is refused before routing:
    // answer it in the API's error shape too.
    frameworkErrors: (err, _req, reply) => {
      const api = frameworkError(err);
      // Fastify types this reply for a route it has not found yet; it is an ordinary reply.
      void (reply as unknown as FastifyReply).code(api.status).send(api.body());
    },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  const hub = new WatchHub(options.engine, {
    watchersMax: settings.watchersMax,
    backlogMax: settings.watchBacklogMax,
    heartbeatMs: settings.watchHeartbeatMs,
  });
  // Every body is JSON: anything else gets 415 rather than being parsed as a string.
  app.removeContentTypeParser('text/plain');
  // JSON whose bytes and strings are exactly text, or a 400 (text.ts says why).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      done(null, parseJsonText(body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.addHook('onRequest', (req, reply, done) => {
    const problem = queryTextProblem(req.url);
    if (problem === undefined) return done();
    const api = new ApiError(400, 'invalid-request', problem);
    reply.code(api.status).send(api.body());
  });
  const inFlight = installHooks(app, metrics);
  const ctx = {
    engine: options.engine,
    metrics,
    hub,
    limits: settings,
    retryAfterSeconds: settings.retryAfterSeconds,
  };
  if (options.auth !== undefined) registerAuth(app, new AuthGate(options.engine, options.auth));
  registerKvRoutes(app, ctx);
  registerAdminRoutes(app, ctx);

  let address: string | undefined;
  return {
    async listen(host, port) {
      await app.listen({ host, port });
      const bound = app.server.address();
      if (bound === null || typeof bound === 'string') throw new Error('not a TCP listener');
      const h = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
      address = `${tls === undefined ? 'http' : 'https'}://${h}:${bound.port}`;
      logger.info({ address }, 'client API listening');
      return address;
    },
    async close() {
      hub.closeAll();
      const closing = app.close();
      // Keep-alive sockets between requests do not always count as idle to Node, and would
      // hold close() until the client drops them: cut them once answers are out.
      await inFlight.drained(settings.closeGraceMs);
      app.server.closeAllConnections();
      await closing;
    },
    get address() {
      return address;
    },
    metrics,
  };
}

/**
 * Request accounting (in-flight count, metrics, a debug line) and the error answers:
 * framework errors become `ErrorBody`, and an unmatched path is a 405 naming the allowed
 * methods when some route has that shape, else a 404.
 */
function installHooks(app: FastifyInstance, metrics: ServerMetrics): InFlight {
  const inFlight = new InFlight();
  const routes: { methods: readonly string[]; pattern: RegExp }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    routes.push({ methods, pattern: routePattern(route.url) });
  });
  app.addHook('onRequest', async (_req, reply) => {
    // 'close' comes once the answer is sent or the client is gone, hijacked or not.
    inFlight.begin();
    reply.raw.once('close', () => inFlight.end());
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequest(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
    req.log.debug({ method: req.method, url: req.url, status: reply.statusCode }, 'request');
  });
  app.setErrorHandler((err, req, reply) => {
    const api = frameworkError(err);
    if (api.status >= 500) req.log.error({ err, url: req.url }, 'request failed');
    return reply.code(api.status).headers(api.headers).send(api.body());
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    const allowed = routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods);
    const api =
      allowed.length > 0
        ? new ApiError(
            405,
            'method-not-allowed',
            `${req.method} ${path}: use ${allowed.join(', ')}`,
            {
              allow: allowed.join(', '),
            },
          )
        : new ApiError(404, 'not-found', notFoundMessage(req.method, path));
    return reply.code(api.status).headers(api.headers).send(api.body());
  });
  return inFlight;
}

/** Requests whose answer is not yet sent and whose client is still connected. */
class InFlight {
  private count = 0;
  private readonly waiters = new Set<() => void>();

  begin(): void {
    this.count++;
  }

  end(): void {
    this.count = Math.max(0, this.count - 1);
    if (this.count === 0) for (const wake of this.waiters) wake();
  }

  /** Resolves when no request is in flight, or after `graceMs` regardless. */
  drained(graceMs: number): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, graceMs);
      this.waiters.add(wake);
    });
  }
}

/** A route URL like /v1/kv/:key as a matcher for concrete paths (for 405 vs 404). */
function routePattern(url: string): RegExp {
  const parts = url.split('/').map((part) => {
    if (part.startsWith(':')) return '[^/]+';
    if (part === '*') return '.*';
    return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('/')}/?$`);
}

function notFoundMessage(method: string, path: string): string {
  if (path.startsWith('/v1/kv/')) {
    return `${method} ${path}: no such route; a key is one path segment, so encode '/' as %2F`;
  }
  return `${method} ${path}: no such route`;
}
