import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http';
import { lazyHttps } from './lazy-https.ts';

/** One request as the client sends it: the whole body at once, answered in full. */
export interface HttpCall {
  readonly method: string;
  readonly headers: OutgoingHttpHeaders;
  readonly body?: string;
  readonly signal: AbortSignal;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body, decoded as UTF-8 (the API answers JSON). */
  readonly text: string;
}

export type HttpSend = (url: string, call: HttpCall) => Promise<HttpAnswer>;

/** Largest answer read into memory: a list of many 1 MiB values, base64 in JSON. */
export const answerBytesMaxDefault = 256 * 1024 * 1024;

/**
 * Request/answer calls over node:http(s), for everything but watch streams. Not the global
 * fetch: its first call in a process costs 30-40 ms (undici is loaded and compiled), most
 * of a short `quorate kv get`. `ca` (a private CA's PEM) replaces the system's roots for
 * https. Failures reject as fetch's do, with the socket error as `cause` and the signal's
 * reason on abort, so the caller tells "never sent" from "lost" the same way.
 */
export function httpSend(
  ca: string | Buffer | undefined,
  socketsMax = 64,
  answerBytesMax = answerBytesMaxDefault,
): HttpSend {
  const agent =
    ca === undefined
      ? undefined
      : new (lazyHttps().Agent)({ ca, keepAlive: true, maxSockets: socketsMax });
  return (url, call) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      const target = new URL(url);
      const https = target.protocol === 'https:';
      const fail = (err: Error) => {
        if (call.signal.aborted) reject(call.signal.reason);
        else reject(new TypeError('fetch failed', { cause: err }));
      };
      const req = (https ? lazyHttps().request : httpRequest)(
        target,
        {
          method: call.method,
          headers: call.headers,
          signal: call.signal,
          ...(https && agent !== undefined ? { agent } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > answerBytesMax) {
              res.destroy(new Error(`answer larger than ${answerBytesMax} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', fail);
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 502,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      req.on('error', fail);
      req.end(call.body);
    });
}
