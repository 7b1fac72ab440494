import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { lazyHttps } from './lazy-https.ts';

/** A `fetch` as far as the client uses it: URL string, method, headers, string body, signal. */
export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/** Statuses whose answer has no body: `new Response` refuses one for them. */
const nullBodyStatuses = new Set([101, 103, 204, 205, 304]);

/**
 * A `fetch` that trusts `ca` (a private CA's PEM) for https URLs, built on node:https:
 * Node's global fetch takes no per-request CA, and setting NODE_EXTRA_CA_CERTS would change
 * the whole process. Failures reject as fetch's do, with the socket error as `cause`, so
 * callers tell "never sent" (ECONNREFUSED) from "lost" alike for both.
 */
export function caFetch(ca: string | Buffer, socketsMax = 64): FetchLike {
  const agent = new (lazyHttps().Agent)({ ca, keepAlive: true, maxSockets: socketsMax });
  return (url, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const send = target.protocol === 'https:' ? lazyHttps().request : httpRequest;
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((value, name) => {
        headers[name] = value;
      });
      const signal = init.signal ?? undefined;
      const req = send(
        target,
        {
          method: init.method ?? 'GET',
          headers,
          ...(target.protocol === 'https:' ? { agent } : {}),
          ...(signal === undefined ? {} : { signal }),
        },
        (res) => resolve(toResponse(res)),
      );
      req.on('error', (err: Error) => {
        if (signal?.aborted === true) reject(signal.reason);
        else reject(new TypeError('fetch failed', { cause: err }));
      });
      req.end(typeof init.body === 'string' ? init.body : undefined);
    });
}

function toResponse(res: IncomingMessage): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (typeof value === 'string') headers.set(name, value);
    else if (Array.isArray(value)) for (const v of value) headers.append(name, v);
  }
  const status = res.statusCode ?? 502;
  if (nullBodyStatuses.has(status)) {
    res.resume();
    return new Response(null, { status, headers });
  }
  const body = Readable.toWeb(res) as ReadableStream<Uint8Array>;
  return new Response(body, { status, headers });
}
