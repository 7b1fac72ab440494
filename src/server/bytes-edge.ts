import type { KvEntryJson } from '../client/wire.ts';
import {
  type Bytes,
  base64FromBytes,
  bytesFromBase64,
  bytesFromText,
  textFromBytes,
} from '../kv/bytes.ts';
import type { KvChange, KvEntry } from '../kv/machine.ts';
import { ApiError } from './errors.ts';

/**
 * Where the HTTP/JSON API meets the store's bytes (src/kv/bytes.ts). Keys and values travel
 * as UTF-8 text by default, or as standard base64 with `?encoding=base64` (path key, query
 * prefix, body values and every key and value of the answer alike), as etcd's JSON gateway
 * carries bytes. A stored key or value that is not UTF-8, asked for as text, is answered in
 * base64 with `"encoding": "base64"` on its entry or change: never replaced, never dropped.
 */
export type WireEncoding = 'text' | 'base64';

export function encodingOf(query: { readonly encoding?: string }): WireEncoding {
  return query.encoding === 'base64' ? 'base64' : 'text';
}

/** The bytes a request field carries; invalid base64 is the client's 400. */
export function bytesIn(field: string, sent: string, encoding: WireEncoding): Bytes {
  if (encoding === 'text') return bytesFromText(sent);
  const bytes = bytesFromBase64(sent);
  if (bytes === undefined) {
    throw new ApiError(400, 'invalid-request', `${field} is not standard base64 (encoding=base64)`);
  }
  return bytes;
}

/** The text of each byte string, or undefined when one of them is not UTF-8. */
function asText(...fields: readonly Bytes[]): string[] | undefined {
  const out: string[] = [];
  for (const f of fields) {
    const text = textFromBytes(f);
    if (text === undefined) return undefined;
    out.push(text);
  }
  return out;
}

export function entryOut(entry: KvEntry, encoding: WireEncoding): KvEntryJson {
  const text = encoding === 'text' ? asText(entry.key, entry.value) : undefined;
  if (text !== undefined) return { ...entry, key: text[0]!, value: text[1]! };
  return {
    ...entry,
    key: base64FromBytes(entry.key),
    value: base64FromBytes(entry.value),
    ...(encoding === 'text' ? { encoding: 'base64' as const } : {}),
  };
}

export function entryOrNull(entry: KvEntry | null, encoding: WireEncoding): KvEntryJson | null {
  return entry === null ? null : entryOut(entry, encoding);
}

export function changeOut(change: KvChange, encoding: WireEncoding): object {
  const fields = change.value === null ? [change.key] : [change.key, change.value];
  const text = encoding === 'text' ? asText(...fields) : undefined;
  // Only the change's own fields: a feed change also carries the key's states (KvFeedChange).
  const { revision } = change;
  if (text !== undefined) {
    return { revision, key: text[0]!, value: change.value === null ? null : text[1]! };
  }
  return {
    revision,
    key: base64FromBytes(change.key),
    value: change.value === null ? null : base64FromBytes(change.value),
    ...(encoding === 'text' ? { encoding: 'base64' as const } : {}),
  };
}
