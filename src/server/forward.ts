import { type Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { type Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HEADER, neverSentErrorCodes } from '../client/wire.ts';
import { ApiError, type CallKind } from './errors.ts';

export interface ForwardOptions {
  /** Forwards a request may take before it must be answered; 1 = follower -> leader only. */
  readonly hopsMax: number;
  readonly timeoutMs: number;
  readonly retryAfterSeconds: number;
  /**
   * Keep-alive connections to the leader, shared by every forwarded request: a hop costs
   * one request on a warm socket, not a connection setup (nor undici fetch's overhead).
   */
  readonly agent: Agent;
  /** The same for an https leader; it trusts the cluster's CA. */
  readonly httpsAgent: HttpsAgent;
}

/** The error code under a fetch failure (undici wraps it in `cause`). */
export function fetchErrorCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

/** The error code of a node:http failure (or of a fetch failure's cause). */
function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : fetchErrorCode(err);
}

interface Relayed {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly leaderHeader: string | undefined;
  readonly body: string;
}

/** One request to the leader over the keep-alive agent; rejects on any transport failure. */
function relay(
  target: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  options: ForwardOptions,
): Promise<Relayed> {
  return new Promise((resolve, reject) => {
    const https = target.protocol === 'https:';
    const send = https ? httpsRequest : httpRequest;
    const agent = https ? options.httpsAgent : options.agent;
    const req = send(
      target,
      { method, headers, agent, signal: AbortSignal.timeout(options.timeoutMs) },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const leader = res.headers[HEADER.leader];
          resolve({
            status: res.statusCode ?? 502,
            contentType: res.headers['content-type'],
            leaderHeader: typeof leader === 'string' ? leader : undefined,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function hopsOf(req: FastifyRequest): number {
  const raw = req.headers[HEADER.hops];
  const hops = typeof raw === 'string' && /^\d{1,3}$/.test(raw) ? Number(raw) : 0;
  return hops;
}

/**
 * Relays `req` to the leader at `leaderUrl` and answers with the leader's answer, adding the
 * leader's URL as a header so the client can go there directly next time. The hop count
 * stops loops when nodes disagree about who leads.
 *
 * Engines forward KV writes and linearizable reads to their leader over the peer transport
 * themselves (replica-host.ts); what reaches this relay is the rest: membership changes, and
 * calls whose leader is not a connected peer (a member just added, a link that is down).
 */
export async function forwardToLeader(
  req: FastifyRequest,
  reply: FastifyReply,
  leaderUrl: string,
  kind: CallKind,
  options: ForwardOptions,
): Promise<FastifyReply> {
  const hops = hopsOf(req);
  if (hops >= options.hopsMax) {
    throw new ApiError(
      421,
      'not-leader',
      `not the leader and forwarding stopped after ${hops} hop(s); try ${leaderUrl}`,
      {},
      leaderUrl,
    );
  }
  const headers: Record<string, string> = { [HEADER.hops]: String(hops + 1) };
  for (const name of [HEADER.session, HEADER.seq, 'accept']) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  let body: string | undefined;
  if (req.body !== undefined && req.body !== null) {
    body = JSON.stringify(req.body);
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  let answer: Relayed;
  try {
    answer = await relay(new URL(req.url, leaderUrl), req.method, headers, body, options);
  } catch (err) {
    throw forwardFailure(err, leaderUrl, kind, options.retryAfterSeconds);
  }
  return reply
    .code(answer.status)
    .header('content-type', answer.contentType ?? 'application/json')
    .header(HEADER.leader, answer.leaderHeader ?? leaderUrl)
    .send(answer.body);
}

function forwardFailure(
  err: unknown,
  leaderUrl: string,
  kind: CallKind,
  retryAfterSeconds: number,
): ApiError {
  const code = errorCode(err);
  if (kind === 'write' && (code === undefined || !neverSentErrorCodes.has(code))) {
    return new ApiError(
      504,
      'unknown-outcome',
      `the leader at ${leaderUrl} did not answer; the write may or may not apply`,
    );
  }
  return new ApiError(
    503,
    'leader-unreachable',
    `the leader at ${leaderUrl} is unreachable (${code ?? String(err)})`,
    { 'retry-after': String(retryAfterSeconds) },
    leaderUrl,
  );
}
