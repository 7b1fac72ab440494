/**
 * Wire framing between peers: version u8 | length u32 (big-endian) | payload. One version
 * byte per frame lets a later format coexist during a rolling upgrade; an unknown version,
 * or a length above the connection's maximum, is a protocol error that closes the connection
 * before any of the payload is buffered.
 */
import { assert } from '../../kernel/assert.ts';

export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 5;

export function encodeFrame(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  frame[0] = FRAME_VERSION;
  new DataView(frame.buffer).setUint32(1, payload.length, false);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

export type DecodeResult =
  | { readonly ok: true; readonly frames: Uint8Array[] }
  | { readonly ok: false; readonly error: string };

/** Reassembles frames from a byte stream without copying any byte more than once. */
export class FrameDecoder {
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  private body: Uint8Array | undefined;
  private bodyFilled = 0;
  private failed = false;

  constructor(private readonly payloadBytesMax: number) {
    assert(Number.isSafeInteger(payloadBytesMax) && payloadBytesMax > 0, 'bad payloadBytesMax');
  }

  push(chunk: Uint8Array): DecodeResult {
    assert(!this.failed, 'FrameDecoder used after an error');
    const frames: Uint8Array[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.body === undefined) {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length - at);
        this.header.set(chunk.subarray(at, at + take), this.headerFilled);
        this.headerFilled += take;
        at += take;
        if (this.headerFilled >= 1 && this.header[0] !== FRAME_VERSION) {
          return this.fail(`unknown frame version ${this.header[0]}`);
        }
        if (this.headerFilled < FRAME_HEADER_BYTES) break;
        const len = new DataView(this.header.buffer).getUint32(1, false);
        if (len > this.payloadBytesMax) {
          return this.fail(`frame of ${len} B exceeds ${this.payloadBytesMax} B`);
        }
        this.body = new Uint8Array(len);
        this.bodyFilled = 0;
      }
      const take = Math.min(this.body.length - this.bodyFilled, chunk.length - at);
      this.body.set(chunk.subarray(at, at + take), this.bodyFilled);
      this.bodyFilled += take;
      at += take;
      if (this.bodyFilled === this.body.length) {
        frames.push(this.body);
        this.body = undefined;
        this.headerFilled = 0;
      }
    }
    return { ok: true, frames };
  }

  /** True between frames: nothing of a next frame has arrived yet. */
  idle(): boolean {
    return this.headerFilled === 0 && this.body === undefined;
  }

  private fail(error: string): DecodeResult {
    this.failed = true;
    return { ok: false, error };
  }
}
