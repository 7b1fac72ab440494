import { readFile } from 'node:fs/promises';
import { UsageError } from '../program.ts';

export interface ValueFlags {
  file?: string;
}

/** Largest value read from a file or standard input: the server's own limit (1 MiB). */
export const valueBytesMax = 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The value `bytes` hold: their text when they are UTF-8, else the bytes themselves (stored
 * exactly, sent in base64), so nothing is ever replaced.
 */
function valueFromBytes(bytes: Uint8Array, from: string): string | Uint8Array {
  if (bytes.length > valueBytesMax) {
    throw new UsageError(
      `${from}: ${bytes.length} bytes, more than the ${valueBytesMax} a value may hold`,
    );
  }
  try {
    return utf8.decode(bytes);
  } catch {
    return bytes;
  }
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    // One byte over the limit is enough to refuse; do not buffer an endless stream.
    if (bytes > valueBytesMax) return Buffer.concat([...chunks, chunk]);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * A write's value: the argument, standard input for '-', or --file. Exactly one source.
 * Standard input and files may hold any bytes.
 * Node decodes command-line arguments as UTF-8 and replaces invalid bytes with U+FFFD before
 * we see them, so an argument holding U+FFFD is refused: the bytes it stood for are gone.
 */
export async function readValue(
  raw: string | undefined,
  flags: ValueFlags,
): Promise<string | Uint8Array> {
  if (flags.file !== undefined) {
    if (raw !== undefined) throw new UsageError('give the value or --file, not both');
    let bytes: Uint8Array;
    try {
      bytes = await readFile(flags.file);
    } catch (err) {
      throw new UsageError(`--file ${flags.file}: ${(err as Error).message}`);
    }
    return valueFromBytes(bytes, flags.file);
  }
  if (raw === undefined)
    throw new UsageError("missing the value: give it, '-' for standard input, or --file");
  if (raw === '-') return valueFromBytes(await readStdin(), 'standard input');
  if (raw.includes('\uFFFD')) {
    throw new UsageError(
      'the value argument holds U+FFFD: the shell passed bytes that are not UTF-8 and they were lost; pass them with --file or on standard input (-)',
    );
  }
  return raw;
}
