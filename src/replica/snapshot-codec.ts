import { type KvSnapshot, KvStateMachine } from '../kv/machine.ts';

/**
 * Key-value snapshots travel inside Raft snapshots as bytes. JSON keeps them readable and
 * needs nothing outside the language; the state machine's values are all JSON already.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeKvSnapshot(snapshot: KvSnapshot): Uint8Array {
  return encoder.encode(JSON.stringify(snapshot));
}

export function decodeKvSnapshot(bytes: Uint8Array): KvStateMachine {
  return KvStateMachine.restore(JSON.parse(decoder.decode(bytes)) as KvSnapshot);
}
