/**
 * How one load-generator request looks on each system's HTTP API. Both adapters describe a
 * plain HTTP request (method, path, headers, body) so the load generator sends them through
 * the same agent, the same timeout and the same retry rule: only the wire format differs.
 *
 *   etcd:    POST /v3/kv/put {key, value} and POST /v3/kv/range {key}, base64 (JSON gateway);
 *            a range without `serializable` is linearizable.
 *   quorate, multipaxos: PUT /v1/kv/:key {value} with a per-client session and sequence number (the
 *            exactly-once headers every real client sends) and GET /v1/kv/:key, linearizable
 *            by default.
 */
/**
 * `quorate` is our Raft cluster, `multipaxos` the same service on Multi-Paxos, `baseline` our
 * Raft cluster as another checkout builds it (`--baseline`), to tell a regression from noise.
 */
export type SystemName = 'etcd' | 'quorate' | 'multipaxos' | 'baseline';
export type LoadOp = 'put' | 'get';

export interface HttpCall {
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

export interface Adapter {
  /** One write of `value` to `key` by load client `client`; `seq` counts that client's writes. */
  put(key: string, value: string, client: number, seq: number): HttpCall;
  /** One linearizable read of `key`. */
  get(key: string): HttpCall;
}

const json = { 'content-type': 'application/json' } as const;
const b64 = (text: string): string => Buffer.from(text).toString('base64');

export const etcdAdapter: Adapter = {
  put: (key, value) => ({
    method: 'POST',
    path: '/v3/kv/put',
    headers: json,
    body: JSON.stringify({ key: b64(key), value: b64(value) }),
  }),
  get: (key) => ({
    method: 'POST',
    path: '/v3/kv/range',
    headers: json,
    body: JSON.stringify({ key: b64(key) }),
  }),
};

/**
 * Sessions must not collide with an earlier run's against the same data (a reused session
 * with a lower seq would be refused as stale), so each load process draws its own base.
 */
export function quorateAdapter(sessionBase: number): Adapter {
  return {
    put: (key, value, client, seq) => ({
      method: 'PUT',
      path: `/v1/kv/${encodeURIComponent(key)}`,
      headers: {
        ...json,
        'quorate-session': String(sessionBase + client),
        'quorate-seq': String(seq),
      },
      body: JSON.stringify({ value }),
    }),
    get: (key) => ({
      method: 'GET',
      path: `/v1/kv/${encodeURIComponent(key)}`,
      headers: {},
      body: undefined,
    }),
  };
}

export function adapterFor(system: SystemName, sessionBase: number): Adapter {
  return system === 'etcd' ? etcdAdapter : quorateAdapter(sessionBase);
}
