import type * as Https from 'node:https';

/**
 * node:https, loaded at its first use: loading it pulls in tls and crypto, a large share of a
 * short `quorate kv get` over plain http, which never needs them. Node caches the module, so
 * every call after the first is a lookup.
 */
export function lazyHttps(): typeof Https {
  return process.getBuiltinModule('node:https');
}
