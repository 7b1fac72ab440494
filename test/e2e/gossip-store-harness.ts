import { type Agent, membersOf, pollUntil } from './gossip-harness.ts';

/**
 * The anti-entropy store's HTTP API on real gossip agents (`--store merkle`), for the e2e
 * test and `npm run bench:gossip-store`.
 */
export interface StoreStatus {
  readonly id: number;
  readonly entries: number;
  readonly tombstones: number;
  readonly root: string;
  readonly repair: {
    readonly started: number;
    readonly inSync: number;
    /** Sent and received, encoded. */
    readonly bytes: number;
    readonly sentBytes: number;
    /** Sent, in the core's compact wire model (MessagePack with field names is fatter). */
    readonly sentModelBytes: number;
  };
  /** Keys and values held here, bytes. */
  readonly dataBytes: number;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

export async function storePut(url: string, key: string, value: string): Promise<Response> {
  return fetch(`${url}/v1/store/${encodeURIComponent(key)}`, {
    method: 'PUT',
    headers: JSON_HEADERS,
    body: JSON.stringify({ value }),
    signal: AbortSignal.timeout(10_000),
  });
}

export async function storeDelete(url: string, key: string): Promise<Response> {
  return fetch(`${url}/v1/store/${encodeURIComponent(key)}`, {
    method: 'DELETE',
    headers: JSON_HEADERS,
    body: '{}',
    signal: AbortSignal.timeout(10_000),
  });
}

/** The value held here, null if absent or deleted, undefined if the agent did not answer. */
export async function storeGet(url: string, key: string): Promise<string | null | undefined> {
  try {
    const res = await fetch(`${url}/v1/store/${encodeURIComponent(key)}`, {
      signal: AbortSignal.timeout(5_000),
    });
    if (res.status === 404) return null;
    if (!res.ok) return undefined;
    return ((await res.json()) as { value: string }).value;
  } catch {
    return undefined;
  }
}

export async function storeStatus(url: string): Promise<StoreStatus | undefined> {
  try {
    const res = await fetch(`${url}/v1/store-status`, { signal: AbortSignal.timeout(5_000) });
    return res.ok ? ((await res.json()) as StoreStatus) : undefined;
  } catch {
    return undefined;
  }
}

/** Every agent's status once all roots are equal (same entries, tombstones included). */
export async function waitConverged(
  agents: readonly Agent[],
  timeoutMs: number,
  everyMs = 100,
): Promise<StoreStatus[] | undefined> {
  return pollUntil(
    async () => {
      const all = await Promise.all(agents.map((a) => storeStatus(a.url)));
      if (all.some((s) => s === undefined)) return undefined;
      const roots = new Set(all.map((s) => s!.root));
      return roots.size === 1 ? (all as StoreStatus[]) : undefined;
    },
    timeoutMs,
    everyMs,
  );
}

/** Waits until each agent sees `n` members alive. */
export async function waitAlive(agents: readonly Agent[], n: number, timeoutMs: number) {
  return pollUntil(async () => {
    const views = await Promise.all(agents.map((a) => membersOf(a.url)));
    return views.every((v) => v?.filter((m) => m.status === 'alive').length === n)
      ? true
      : undefined;
  }, timeoutMs);
}

/** Sum over agents of repair bytes sent and received (each message counted at both ends). */
export function repairBytes(statuses: readonly (StoreStatus | undefined)[]): number {
  return statuses.reduce((n, s) => n + (s?.repair.bytes ?? 0), 0);
}
