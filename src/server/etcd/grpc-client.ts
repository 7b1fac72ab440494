import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type ClientDuplexStream,
  credentials,
  Metadata,
  type MethodDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { type EtcdServiceName, etcdService } from './proto.ts';

/** A request as sent: any field may be left out, at any depth (proto3 defaults it). */
export type Sent<T> = T extends Buffer
  ? T
  : T extends readonly (infer U)[]
    ? readonly Sent<U>[]
    : T extends object
      ? { readonly [K in keyof T]?: Sent<T[K]> | null }
      : T;

/**
 * A thin typed gRPC client for etcd's API, built from the same descriptors as the server:
 * for this package's tests and the benchmark's load generator, which must speak etcd's wire
 * protocol to etcd and to quorate alike. Requests may leave fields out (proto3 defaults).
 */
export class EtcdGrpcClient {
  private readonly client: Client;

  constructor(
    target: string,
    options: {
      readonly ca?: string | Buffer;
      readonly credentials?: ChannelCredentials;
      /**
       * A TCP connection of this client's own: grpc-js otherwise shares one per target
       * among all clients of the process, where several real clients would have several.
       */
      readonly ownConnection?: boolean;
      /** More grpc-js channel options (the benchmark turns transparent retries off). */
      readonly channelOptions?: ChannelOptions;
    } = {},
  ) {
    const creds =
      options.credentials ??
      (options.ca === undefined
        ? credentials.createInsecure()
        : credentials.createSsl(Buffer.from(options.ca)));
    // Channelz (per-call statistics nobody reads here) costs CPU on every call: off.
    this.client = new Client(target.replace(/^https?:\/\//, ''), creds, {
      'grpc.enable_channelz': 0,
      ...(options.ownConnection === true ? { 'grpc.use_local_subchannel_pool': 1 } : {}),
      ...options.channelOptions,
    });
  }

  unary<Req extends object, Res>(
    service: EtcdServiceName,
    method: string,
    request: Sent<Req>,
    deadlineMs = 10_000,
  ): Promise<Res> {
    return this.unaryWith(service, method, request, new Metadata(), deadlineMs);
  }

  bidi<Req extends object, Res>(
    service: EtcdServiceName,
    method: string,
  ): ClientDuplexStream<Sent<Req>, Res> {
    return this.bidiWith(service, method, new Metadata());
  }

  /** `unary` with request metadata (an auth `token`, as etcd's clients send it). */
  unaryWith<Req extends object, Res>(
    service: EtcdServiceName,
    method: string,
    request: Sent<Req>,
    metadata: Metadata,
    deadlineMs = 10_000,
  ): Promise<Res> {
    const def = methodOf<Sent<Req>, Res>(service, method);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        metadata,
        { deadline: Date.now() + deadlineMs },
        (err: ServiceError | null, res?: Res) => {
          if (err !== null) reject(err);
          else resolve(res as Res);
        },
      );
    });
  }

  /** `bidi` with request metadata. */
  bidiWith<Req extends object, Res>(
    service: EtcdServiceName,
    method: string,
    metadata: Metadata,
  ): ClientDuplexStream<Sent<Req>, Res> {
    const def = methodOf<Sent<Req>, Res>(service, method);
    return this.client.makeBidiStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      metadata,
    );
  }

  close(): void {
    this.client.close();
  }
}

function methodOf<Req, Res>(service: EtcdServiceName, method: string): MethodDefinition<Req, Res> {
  const def = etcdService(service)[method];
  if (def === undefined) throw new Error(`etcd's ${service} service has no method ${method}`);
  return def as MethodDefinition<Req, Res>;
}
