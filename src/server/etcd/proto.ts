import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';

/**
 * etcd's v3 API descriptors, loaded from the .proto files shipped in the package's proto/
 * folder (etcd's own files, as data). Decoding options fix the shapes types.ts declares:
 * field names as in the .proto (snake_case), 64-bit integers as numbers (our ids and
 * revisions are far below 2^53), enums as their numbers, bytes as Buffers, absent scalars
 * as their defaults, and the name of the set member of each oneof.
 */
export const protoLoadOptions: Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  oneofs: true,
};

/** Parent folders searched for proto/: sources, dist/ and the CLI bundle sit 2-3 deep. */
const PROTO_SEARCH_DEPTH_MAX = 5;

/**
 * The package's proto/ folder, the first one found going up from this module: it is
 * src/server/etcd in a clone, dist/server/etcd in the library, dist/cli-bundle in the CLI.
 */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up <= PROTO_SEARCH_DEPTH_MAX; up++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, 'rpc.proto'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(
    `etcd's .proto files (proto/rpc.proto) not found above ${fileURLToPath(import.meta.url)}`,
  );
}

let loaded: PackageDefinition | undefined;

/** The package definition of rpc.proto (with kv.proto and auth.proto), loaded once. */
export function etcdPackage(): PackageDefinition {
  loaded ??= loadSync('rpc.proto', { ...protoLoadOptions, includeDirs: [protoDir()] });
  return loaded;
}

/** The etcd services quorate serves, by their names in package etcdserverpb. */
export const etcdServiceNames = ['KV', 'Watch', 'Lease', 'Cluster', 'Maintenance', 'Auth'] as const;
export type EtcdServiceName = (typeof etcdServiceNames)[number];

export function etcdService(name: EtcdServiceName): ServiceDefinition {
  const def = etcdPackage()[`etcdserverpb.${name}`];
  if (def === undefined || !isService(def)) throw new Error(`rpc.proto has no service ${name}`);
  return def as ServiceDefinition;
}

function isService(def: object): boolean {
  return !('format' in def);
}

/** Client constructors for tests and the benchmark's load generator. */
export function etcdGrpcObject(): ReturnType<typeof loadPackageDefinition> {
  return loadPackageDefinition(etcdPackage());
}
