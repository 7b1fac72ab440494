import { ApiError } from './errors.ts';

/**
 * The API's text is Unicode, byte for byte: a body that is not valid UTF-8, or a string
 * that is not well-formed UTF-16 (a lone surrogate from a `\udcff` escape), is refused with
 * a 400 naming the problem, never replaced. Replacing would store something other than what
 * the client sent (U+FFFD for each bad byte). A lone surrogate would be worse: peer
 * messages and the WAL carry strings as UTF-8, so the leader would apply the value it got
 * and every follower a replaced one, and the replicas would diverge.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** In a `u` regex a surrogate pair is one code point, so this matches lone surrogates only. */
const loneSurrogate = /\p{Cs}/u;

/** Whether `text` is well-formed UTF-16 (String.prototype.isWellFormed, ES2024). */
export function isWellFormed(text: string): boolean {
  return !loneSurrogate.test(text);
}

/** Depth past which a body is refused rather than walked (bodies here are flat objects). */
const depthMax = 32;

/** Parses a JSON body from its bytes; throws ApiError 400 for bad UTF-8, JSON or text. */
export function parseJsonText(body: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new ApiError(400, 'invalid-request', 'the body is not valid UTF-8');
  }
  if (text.trim() === '') throw new ApiError(400, 'invalid-request', 'the JSON body is empty');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'invalid-request', `the body is not JSON: ${(err as Error).message}`);
  }
  const bad = firstIllFormed(value, '$', 0);
  if (bad !== undefined) {
    throw new ApiError(
      400,
      'invalid-request',
      `${bad} is not well-formed Unicode text (a lone surrogate)`,
    );
  }
  return value;
}

/** The JSON path of the first string (value or property name) that is not well-formed. */
function firstIllFormed(value: unknown, path: string, depth: number): string | undefined {
  if (typeof value === 'string') return isWellFormed(value) ? undefined : path;
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth >= depthMax)
    throw new ApiError(400, 'invalid-request', `the body nests deeper than ${depthMax}`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = firstIllFormed(value[i], `${path}[${i}]`, depth + 1);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  for (const [name, item] of Object.entries(value)) {
    if (!isWellFormed(name)) return `a property name in ${path}`;
    const bad = firstIllFormed(item, `${path}.${name}`, depth + 1);
    if (bad !== undefined) return bad;
  }
  return undefined;
}

/**
 * Why a request's query string is not UTF-8 text, if it is not: Node's query parser would
 * turn `prefix=%FF` into U+FFFD and list the wrong keys.
 */
export function queryTextProblem(url: string): string | undefined {
  const at = url.indexOf('?');
  if (at < 0) return undefined;
  for (const part of url.slice(at + 1).split('&')) {
    try {
      decodeURIComponent(part.replaceAll('+', ' '));
    } catch {
      return `the query '${part}' is not percent-encoded UTF-8`;
    }
  }
  return undefined;
}
