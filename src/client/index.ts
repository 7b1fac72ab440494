/**
 * The typed client of quorate's key-value service and its wire protocol. Imports the kernel,
 * the kv model and, for the `ca` option (https with a private CA), node:https.
 */
export type { ClientOptions, Consistency } from './client.ts';
export { QuorateClient } from './client.ts';
export type { ClientErrorCode } from './errors.ts';
export { QuorateError, UnknownOutcomeError, UnreachableError } from './errors.ts';
export type {
  CasResponse,
  ChangeEvent,
  DeleteResponse,
  ErrorBody,
  ErrorCode,
  GetResponse,
  HealthResponse,
  ListResponse,
  MemberJson,
  MembersResponse,
  OkResponse,
  PeerProgressJson,
  PutResponse,
  StatusResponse,
  WatchingEvent,
} from './wire.ts';
export { HEADER, keyPath, SESSION_MAX } from './wire.ts';
