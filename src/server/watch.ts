import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { ErrorBody, ErrorCode } from '../client/wire.ts';
import type { KvChange } from '../kv/machine.ts';
import { changeOut, type WireEncoding } from './bytes-edge.ts';
import type { KvEngine } from './engine.ts';
import { ApiError } from './errors.ts';

export interface WatchOptions {
  /** Open watch streams this server serves at once. */
  readonly watchersMax: number;
  /** Events a slow reader may leave unsent before its stream is ended with `slow-watcher`. */
  readonly backlogMax: number;
  readonly heartbeatMs: number;
}

export interface WatchRequest {
  readonly prefix: string;
  /** Changes strictly after this revision are sent. */
  readonly fromRevision: number;
  /** How keys and values are written (default text). */
  readonly encoding?: WireEncoding;
}

/** One server-sent-events stream of changes. */
class WatchStream {
  /** Events written while the socket buffer was full; reset on 'drain'. */
  private backlog = 0;
  private ended = false;
  private cancel: (() => void) | undefined;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly raw: ServerResponse,
    private readonly options: WatchOptions,
    private readonly onEnd: (stream: WatchStream) => void,
  ) {
    raw.on('drain', () => (this.backlog = 0));
    raw.on('close', () => this.end());
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), options.heartbeatMs);
    this.heartbeat.unref();
  }

  attach(cancel: () => void): void {
    if (this.ended) cancel();
    else this.cancel = cancel;
  }

  change(change: KvChange, encoding: WireEncoding = 'text'): void {
    if (this.ended) return;
    const data = JSON.stringify(changeOut(change, encoding));
    this.write(`id: ${change.revision}\nevent: change\ndata: ${data}\n\n`);
    if (this.backlog > this.options.backlogMax) {
      this.fail('slow-watcher', `more than ${this.options.backlogMax} changes unsent; resume`);
    }
  }

  fail(code: ErrorCode, message: string): void {
    const body: ErrorBody = { error: { code, message } };
    this.write(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
    this.end();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    this.cancel?.();
    if (!this.raw.writableEnded) this.raw.end();
    this.onEnd(this);
  }

  private write(text: string): void {
    if (this.raw.writableEnded || this.raw.destroyed) return;
    if (!this.raw.write(text)) this.backlog++;
  }
}

/** The watch streams of one server, so closing the server can end them all. */
export class WatchHub {
  private readonly streams = new Set<WatchStream>();

  constructor(
    private readonly engine: KvEngine,
    private readonly options: WatchOptions,
  ) {}

  get size(): number {
    return this.streams.size;
  }

  /**
   * Takes over `reply` and streams changes after `request.fromRevision` under its prefix.
   * Headers go out before the engine is asked, so compaction is reported as an error event.
   */
  serve(reply: FastifyReply, request: WatchRequest): void {
    if (this.streams.size >= this.options.watchersMax) {
      throw new ApiError(503, 'too-many-watchers', `${this.options.watchersMax} watches are open`, {
        'retry-after': '5',
      });
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    raw.write(
      `event: watching\ndata: ${JSON.stringify({ fromRevision: request.fromRevision })}\n\n`,
    );
    const stream = new WatchStream(raw, this.options, (s) => this.streams.delete(s));
    this.streams.add(stream);
    const handle = this.engine.watch(request.fromRevision, (change) => {
      if (change.key.startsWith(request.prefix)) stream.change(change, request.encoding);
    });
    if (handle === 'compacted') {
      stream.fail('compacted', `changes after revision ${request.fromRevision} were compacted`);
      return;
    }
    stream.attach(() => handle.cancel());
  }

  closeAll(): void {
    for (const stream of [...this.streams]) stream.end();
  }
}
