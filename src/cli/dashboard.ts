import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, relative, sep } from 'node:path';
import { brotliCompressSync, gzipSync, constants as zlibConstants } from 'node:zlib';
import { caFetch, type FetchLike } from '../client/ca-fetch.ts';
import { keyPath, type StatusResponse } from '../client/wire.ts';
import type { NodeId } from '../kernel/ids.ts';
import { DashboardGuard } from './dashboard-guard.ts';
import { packageRoot } from './package-root.ts';

/**
 * The web dashboard's server: the built app (dist/web) with precompressed assets, plus a
 * small JSON API for the live cluster view that fans out to the nodes' /v1/status and
 * /metrics (so the browser needs no CORS) and forwards stop/start and put/get.
 *
 *   GET  /api/cluster             -> ClusterSnapshot
 * State-changing calls need the page's per-run token and this origin (dashboard-guard.ts).
 *
 *   POST /api/nodes/:id/stop      -> {ok: true}
 *   POST /api/nodes/:id/start     -> {ok: true}
 *   PUT  /api/kv/:key  {value}    -> the node's answer (any node; followers forward)
 *   GET  /api/kv/:key             -> the node's answer
 */
export interface DashboardCluster {
  endpoints(): readonly { readonly id: NodeId; readonly clientUrl: string }[];
  stop(id: NodeId): Promise<void>;
  start(id: NodeId): Promise<void>;
}

export interface DashboardOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The cluster for the live view; without one the live view says there is none. */
  readonly cluster: DashboardCluster | undefined;
  /** The built app; defaults to dist/web at the repository root. */
  readonly webRoot?: string;
  /** How long a fan-out request to a node may take. */
  readonly nodeTimeoutMs?: number;
  /** Largest request body the API accepts. */
  readonly bodyBytesMax?: number;
  /** PEM of the private CA that signed the nodes' certificates, when they serve https. */
  readonly ca?: string;
  /** Where the dashboard says what it did and refused (stop/start); `quorate up` prints it. */
  readonly log?: (line: string) => void;
}

export interface Dashboard {
  readonly url: string;
  /** This run's token: state-changing API calls must send it (the served page has it). */
  readonly token: string;
  close(): Promise<void>;
}

/** Counters the live charts turn into rates; cumulative since the node started. */
export interface NodeCounters {
  /** Key-value API requests answered (status and metrics polls excluded). */
  readonly kvRequests: number;
  /** Sum and count of key-value request latencies, seconds. */
  readonly kvLatencySum: number;
  readonly kvLatencyCount: number;
  readonly commits: number;
}

export interface NodeSnapshot {
  readonly id: NodeId;
  readonly clientUrl: string;
  readonly status: StatusResponse | null;
  readonly counters: NodeCounters | null;
  readonly error: string | null;
}

export interface ClusterSnapshot {
  /** Wall-clock ms when the fan-out began. */
  readonly at: number;
  readonly hasCluster: boolean;
  readonly nodes: readonly NodeSnapshot[];
}

export const defaultWebRoot = join(packageRoot(), 'dist', 'web');

const contentTypes: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Bodies smaller than this are sent as they are: compressing them gains nothing. */
const COMPRESS_MIN_BYTES = 512;

interface Asset {
  readonly type: string;
  readonly raw: Buffer;
  readonly gzip: Buffer | undefined;
  readonly br: Buffer | undefined;
  /** Hashed file names never change content: cache them for a year. */
  readonly immutable: boolean;
}

/**
 * Every file of the built app, in memory with its compressed forms: the build writes
 * `.gz` and `.br` beside each asset; any missing one is made here, once.
 */
export function loadAssets(webRoot: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(webRoot)) return assets;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (!name.endsWith('.gz') && !name.endsWith('.br')) add(path);
    }
  };
  const add = (path: string) => {
    const raw = readFileSync(path);
    const urlPath = `/${relative(webRoot, path).split(sep).join('/')}`;
    const type = contentTypes[extname(path)] ?? 'application/octet-stream';
    const small = raw.length < COMPRESS_MIN_BYTES || type.startsWith('image/png');
    const gzip = small ? undefined : readOr(`${path}.gz`, () => gzipSync(raw, { level: 9 }));
    const br = small
      ? undefined
      : readOr(`${path}.br`, () =>
          brotliCompressSync(raw, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11 } }),
        );
    assets.set(urlPath, { type, raw, gzip, br, immutable: urlPath.startsWith('/assets/') });
  };
  walk(webRoot);
  return assets;
}

function readOr(path: string, make: () => Buffer): Buffer {
  return existsSync(path) ? readFileSync(path) : make();
}

function sendAsset(req: IncomingMessage, res: ServerResponse, asset: Asset): void {
  const accept = String(req.headers['accept-encoding'] ?? '');
  let body = asset.raw;
  let encoding: string | undefined;
  if (asset.br !== undefined && /\bbr\b/.test(accept)) {
    body = asset.br;
    encoding = 'br';
  } else if (asset.gzip !== undefined && /\bgzip\b/.test(accept)) {
    body = asset.gzip;
    encoding = 'gzip';
  }
  res.statusCode = 200;
  res.setHeader('content-type', asset.type);
  res.setHeader('content-length', body.length);
  res.setHeader('vary', 'accept-encoding');
  res.setHeader(
    'cache-control',
    asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  );
  if (encoding !== undefined) res.setHeader('content-encoding', encoding);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(text);
}

async function readBody(req: IncomingMessage, bytesMax: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > bytesMax) throw new RangeError(`body over ${bytesMax} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Sums the Prometheus samples the live charts need out of a node's /metrics text. */
export function parseCounters(text: string): NodeCounters {
  let kvRequests = 0;
  let kvLatencySum = 0;
  let kvLatencyCount = 0;
  let commits = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const space = line.lastIndexOf(' ');
    const name = line.slice(0, space);
    const value = Number(line.slice(space + 1));
    if (!Number.isFinite(value)) continue;
    const kv = name.includes('route="/v1/kv');
    if (name.startsWith('quorate_http_requests_total{') && kv) kvRequests += value;
    else if (name.startsWith('quorate_http_request_duration_seconds_sum{') && kv)
      kvLatencySum += value;
    else if (name.startsWith('quorate_http_request_duration_seconds_count{') && kv)
      kvLatencyCount += value;
    else if (name === 'quorate_commits_total') commits += value;
  }
  return { kvRequests, kvLatencySum, kvLatencyCount, commits };
}

async function snapshotNode(
  fetch: FetchLike,
  id: NodeId,
  clientUrl: string,
  timeoutMs: number,
): Promise<NodeSnapshot> {
  try {
    const signal = AbortSignal.timeout(timeoutMs);
    const [status, metrics] = await Promise.all([
      fetch(`${clientUrl}/v1/status`, { signal }),
      fetch(`${clientUrl}/metrics`, { signal }),
    ]);
    if (!status.ok) throw new Error(`/v1/status answered ${status.status}`);
    const body = (await status.json()) as StatusResponse;
    const counters = metrics.ok ? parseCounters(await metrics.text()) : null;
    return { id, clientUrl, status: body, counters, error: null };
  } catch (err) {
    return { id, clientUrl, status: null, counters: null, error: (err as Error).message };
  }
}

/** Starts the dashboard server; resolves once it listens. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const assets = loadAssets(options.webRoot ?? defaultWebRoot);
  const timeoutMs = options.nodeTimeoutMs ?? 1000;
  const bodyBytesMax = options.bodyBytesMax ?? 1024 * 1024;
  const fetchNode: FetchLike =
    options.ca === undefined ? (url, init) => fetch(url, init) : caFetch(options.ca);
  const log = options.log ?? (() => {});
  // Set once the port is known (port 0 picks one); no request is served before.
  let guard: DashboardGuard | undefined;
  const api = new DashboardApi(options.cluster, fetchNode, timeoutMs, bodyBytesMax, log);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://dashboard').pathname;
    if (guard === undefined) return sendJson(res, 503, { error: 'starting' });
    const host = guard.checkHost(req);
    if (!host.ok) {
      log(`dashboard: refused ${req.method} ${path}: ${host.why}`);
      return sendJson(res, 403, { error: host.why });
    }
    if (path.startsWith('/api/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        const change = guard.checkChange(req);
        if (!change.ok) {
          log(`dashboard: refused ${req.method} ${path}: ${change.why}`);
          return sendJson(res, 403, { error: change.why });
        }
      }
      api.handle(req, res, path).catch((err: Error) => sendJson(res, 500, { error: err.message }));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed' });
      return;
    }
    const asset = assets.get(path === '/' ? '/index.html' : path);
    if (asset !== undefined && asset === assets.get('/index.html')) {
      const page = guard.pageWithToken(asset.raw);
      sendAsset(req, res, { ...asset, raw: page, gzip: undefined, br: undefined });
    } else if (asset !== undefined) sendAsset(req, res, asset);
    else if (assets.size === 0)
      sendJson(res, 503, { error: 'no web build: run npm run build:web' });
    else sendJson(res, 404, { error: `no such file: ${path}` });
  });
  const url = await listen(server, options.host, options.port);
  const ready = new DashboardGuard(options.host, Number(new URL(url).port));
  guard = ready;
  return {
    url,
    token: ready.token,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const bound = server.address();
      if (bound === null || typeof bound === 'string') {
        reject(new Error('not a TCP listener'));
        return;
      }
      const h = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
      resolve(`http://${h}:${bound.port}/`);
    });
  });
}

class DashboardApi {
  constructor(
    private readonly cluster: DashboardCluster | undefined,
    private readonly fetch: FetchLike,
    private readonly timeoutMs: number,
    private readonly bodyBytesMax: number,
    private readonly log: (line: string) => void,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const cluster = this.cluster;
    if (path === '/api/cluster' && req.method === 'GET') {
      const snapshot: ClusterSnapshot = {
        at: Date.now(),
        hasCluster: cluster !== undefined,
        nodes: await Promise.all(
          (cluster?.endpoints() ?? []).map((e) =>
            snapshotNode(this.fetch, e.id, e.clientUrl, this.timeoutMs),
          ),
        ),
      };
      sendJson(res, 200, snapshot);
      return;
    }
    if (cluster === undefined) {
      sendJson(res, 404, { error: 'no cluster: start one with quorate up' });
      return;
    }
    const control = /^\/api\/nodes\/(\d+)\/(stop|start)$/.exec(path);
    if (control !== null && req.method === 'POST') {
      const id = Number(control[1]);
      if (!cluster.endpoints().some((e) => e.id === id)) {
        sendJson(res, 404, { error: `no node ${id}` });
        return;
      }
      this.log(`dashboard: ${control[2]} node ${id}`);
      await (control[2] === 'stop' ? cluster.stop(id) : cluster.start(id));
      this.log(`dashboard: node ${id} ${control[2] === 'stop' ? 'stopped' : 'started'}`);
      sendJson(res, 200, { ok: true });
      return;
    }
    const kv = /^\/api\/kv\/([^/]+)$/.exec(path);
    if (kv !== null && (req.method === 'GET' || req.method === 'PUT')) {
      await this.forwardKv(req, res, decodeURIComponent(kv[1]!), cluster);
      return;
    }
    sendJson(res, 404, { error: `no such API: ${req.method} ${path}` });
  }

  /** Sends a put or get to the first node that answers; followers forward to the leader. */
  private async forwardKv(
    req: IncomingMessage,
    res: ServerResponse,
    key: string,
    cluster: DashboardCluster,
  ): Promise<void> {
    const body = req.method === 'PUT' ? await readBody(req, this.bodyBytesMax) : undefined;
    let lastError = 'no nodes';
    for (const node of cluster.endpoints()) {
      try {
        const init: RequestInit = {
          method: req.method ?? 'GET',
          signal: AbortSignal.timeout(this.timeoutMs * 5),
        };
        if (body !== undefined) {
          init.body = body;
          init.headers = { 'content-type': 'application/json' };
        }
        const answer = await this.fetch(`${node.clientUrl}${keyPath(key)}`, init);
        sendJson(res, answer.status, { node: node.id, answer: await answer.json() });
        return;
      } catch (err) {
        lastError = `n${node.id}: ${(err as Error).message}`;
      }
    }
    sendJson(res, 502, { error: `no node answered: ${lastError}` });
  }
}
