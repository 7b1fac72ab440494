/**
 * Keys and values are arbitrary bytes, held as **byte strings**: JS strings whose every code
 * unit is one byte (0x00-0xFF).
 *
 * Why not `Uint8Array`: the store's hot paths are map lookups by key, ordered comparisons and
 * prefix tests. A byte string is a `Map` key as it is, `<` on two byte strings is exactly
 * etcd's byte-wise order (code units compare as unsigned bytes, a prefix sorts first),
 * `startsWith` is a prefix test, and equal keys are equal values, so no copy, hash or
 * comparator is needed. Both our codecs carry them exactly: JSON escapes nothing it cannot
 * restore, and msgpack encodes a string as UTF-8, which round-trips every code unit below
 * 0xD800 (a byte string has no surrogates), at most doubling bytes >= 0x80.
 *
 * The invariant is checked where bytes enter (`isBytes`, in `checkKvOp` and at the API
 * edges); text is converted at the edge with `bytesFromText` / `textFromBytes` (UTF-8).
 */
export type Bytes = string;

/** Whether every code unit of `s` is a byte. */
export function isBytes(s: string): boolean {
  // A regex scan is several times faster than a charCodeAt loop for long values.
  return !NON_BYTE.test(s);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: bytes include the control range
const NON_BYTE = /[^\x00-\xff]/;

/** The byte string of `bytes`. */
export function bytesFromArray(bytes: Uint8Array): Bytes {
  let out = '';
  // In chunks: String.fromCharCode takes its arguments on the stack.
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** The bytes of a byte string. */
export function arrayFromBytes(s: Bytes): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The UTF-8 bytes of a text (which must be well-formed: no lone surrogates). */
export function bytesFromText(text: string): Bytes {
  // ASCII, the common case, is its own byte string.
  if (ASCII.test(text)) return text;
  return bytesFromArray(utf8.encode(text));
}

/** The text whose UTF-8 encoding is `bytes`, or undefined if `bytes` is not UTF-8. */
export function textFromBytes(bytes: Bytes): string | undefined {
  if (ASCII.test(bytes)) return bytes;
  try {
    return strictUtf8.decode(arrayFromBytes(bytes));
  } catch {
    return undefined;
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII includes the control range
const ASCII = /^[\x00-\x7f]*$/;

/** Standard base64 (with padding) of a byte string, as etcd's JSON gateway writes bytes. */
export function base64FromBytes(bytes: Bytes): string {
  return btoa(bytes);
}

/** The byte string of standard base64 text, or undefined if it is not base64. */
export function bytesFromBase64(text: string): Bytes | undefined {
  if (!BASE64.test(text)) return undefined;
  try {
    return atob(text);
  } catch {
    return undefined;
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The end of the range of every key starting with `prefix` (etcd's `GetPrefixRangeEnd`): the
 * prefix with its last byte below 0xFF incremented and what follows dropped; "\0" (every key
 * from `prefix` on) when there is no such byte.
 */
export function prefixEnd(prefix: Bytes): Bytes {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0xff) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return '\0';
}
