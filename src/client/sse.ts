/** One server-sent event (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
  readonly id: string | undefined;
}

/** Splits complete lines off `buffer`; a final '\r' may be half of a split '\r\n'. */
function takeLines(buffer: string, atEnd: boolean): { lines: string[]; rest: string } {
  const lines: string[] = [];
  let rest = buffer;
  let newline = rest.search(/\r\n|\r|\n/);
  while (newline >= 0 && (atEnd || !(newline === rest.length - 1 && rest.endsWith('\r')))) {
    lines.push(rest.slice(0, newline));
    rest = rest.slice(newline + (rest.startsWith('\r\n', newline) ? 2 : 1));
    newline = rest.search(/\r\n|\r|\n/);
  }
  return { lines, rest };
}

/**
 * Parses a text/event-stream body into events. Comment lines (heartbeats) are skipped; an
 * unterminated last event is dropped, as the standard says. A line longer than
 * `lineBytesMax` ends the stream with an error rather than buffering without bound.
 */
export async function* parseSse(
  body: ReadableStream<Uint8Array>,
  lineBytesMax: number,
): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      const { lines, rest } = takeLines(buffer, done);
      buffer = rest;
      for (const line of lines) {
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id };
          event = '';
          data = [];
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const raw = colon < 0 ? '' : line.slice(colon + 1);
          const text = raw.startsWith(' ') ? raw.slice(1) : raw;
          if (field === 'event') event = text;
          else if (field === 'data') data.push(text);
          else if (field === 'id') id = text;
        }
      }
      if (done) return;
      if (buffer.length > lineBytesMax) {
        throw new Error(`event stream line longer than ${lineBytesMax} bytes`);
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
