import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServiceError } from '@grpc/grpc-js';
import { EtcdGrpcClient } from '../../server/etcd/grpc-client.ts';
import type { LocalCluster } from './up.ts';

/**
 * `quorate up --auth`: turns etcd's auth on in a fresh cluster, through its own gRPC API as
 * etcdctl would (user root with a random password, role root, auth enable). The password is
 * printed once and kept nowhere: the store holds only its salted hash. A cluster whose auth
 * is already on (a restart on the same data) is left as it is.
 */

/** How long the cluster may take to elect a leader and take the first write. */
const SETUP_DEADLINE_MS = 30_000;
const RETRY_MS = 200;

/** Returns root's password when it made one (kept in memory only, for `up`'s own calls). */
export async function enableAuth(
  cluster: LocalCluster,
  write: (line: string) => void,
): Promise<string | undefined> {
  const node = cluster.nodes.find((n) => n.grpcUrl !== undefined);
  if (node?.grpcUrl === undefined) throw new Error('--auth needs the gRPC API (no node serves it)');
  const ca = cluster.tls === undefined ? undefined : await readFile(cluster.tls.ca, 'utf8');
  const client = new EtcdGrpcClient(node.grpcUrl, ca === undefined ? {} : { ca });
  const until = Date.now() + SETUP_DEADLINE_MS;
  const call = async <Res>(method: string, req: object): Promise<Res> => {
    for (;;) {
      try {
        return await client.unary<object, Res>('Auth', method, req, 5000);
      } catch (err) {
        const e = err as ServiceError;
        // No leader yet, or the node not yet serving: ask again until the deadline.
        const passing = e.code === 14 || e.code === 4 || e.details?.includes('leader');
        if (!passing || Date.now() > until) throw err;
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  };
  try {
    const status = await call<{ enabled: boolean }>('AuthStatus', {});
    if (status.enabled) {
      write('auth: on (enabled earlier; the root password was printed then)\n');
      return undefined;
    }
    const password = randomBytes(18).toString('base64url');
    await call('UserAdd', { name: 'root', password });
    await call('RoleAdd', { name: 'root' });
    await call('UserGrantRole', { user: 'root', role: 'root' });
    await call('AuthEnable', {});
    write(
      `auth: on. user root, password ${password}\n` +
        '  (printed this once and stored nowhere: keep it; quorate kv --user root:<password>, ' +
        'etcdctl --user root:<password>)\n',
    );
    return password;
  } finally {
    client.close();
  }
}
