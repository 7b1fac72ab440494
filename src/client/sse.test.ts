import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSse, type SseEvent } from './sse.ts';

/** A body that delivers `text` in the given chunk sizes (cycled), as a network might. */
function chunked(text: string, sizes: readonly number[]): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      const size = sizes[i++ % sizes.length] ?? 1;
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
}

async function collect(body: ReadableStream<Uint8Array>, max = 1 << 20): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const e of parseSse(body, max)) events.push(e);
  return events;
}

describe('parseSse', () => {
  it('reads events, ids, multi-line data and skips comments', async () => {
    const text = ': hello\n\nevent: change\nid: 7\ndata: {"a":1}\n\ndata: x\ndata: y\n\n';
    expect(await collect(chunked(text, [1000]))).toEqual([
      { event: 'change', id: '7', data: '{"a":1}' },
      { event: 'message', id: '7', data: 'x\ny' },
    ]);
  });

  it('gives the same events however the bytes are split, with any line ending', async () => {
    const line = fc.stringMatching(/^[a-z{}":0-9 é✓]{0,12}$/);
    const event = fc.record({ event: fc.constantFrom('change', 'error', 'watching'), data: line });
    await fc.assert(
      fc.asyncProperty(
        fc.array(event, { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 5 }),
        fc.constantFrom('\n', '\r\n', '\r'),
        async (events, sizes, eol) => {
          const text = events
            .map((e) => `: beat${eol}event: ${e.event}${eol}data: ${e.data}${eol}${eol}`)
            .join('');
          const parsed = await collect(chunked(text, sizes));
          expect(parsed.map((p) => ({ event: p.event, data: p.data }))).toEqual(events);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a line longer than its bound instead of buffering it', async () => {
    await expect(collect(chunked(`data: ${'x'.repeat(100)}`, [10]), 50)).rejects.toThrow(/longer/);
  });
});
