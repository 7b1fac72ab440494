import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder } from './frame.ts';

describe('FrameDecoder', () => {
  it('reassembles frames however the stream is split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1, maxLength: 8 }),
        (payloads, cuts) => {
          const stream = Buffer.concat(payloads.map(encodeFrame));
          const decoder = new FrameDecoder(40);
          const out: Uint8Array[] = [];
          for (let at = 0, i = 0; at < stream.length; i++) {
            const step = cuts[i % cuts.length] as number;
            const r = decoder.push(stream.subarray(at, at + step));
            if (!r.ok) return false;
            out.push(...r.frames);
            at += step;
          }
          return (
            decoder.idle() &&
            JSON.stringify(out.map((f) => [...f])) === JSON.stringify(payloads.map((p) => [...p]))
          );
        },
      ),
    );
  });

  it('fails on an unknown version byte and on a frame above the maximum, before buffering it', () => {
    expect(new FrameDecoder(10).push(Uint8Array.of(2, 0, 0, 0, 1, 7))).toEqual({
      ok: false,
      error: 'unknown frame version 2',
    });
    expect(new FrameDecoder(10).push(Uint8Array.of(1, 0, 0, 0, 11))).toEqual({
      ok: false,
      error: 'frame of 11 B exceeds 10 B',
    });
  });
});
