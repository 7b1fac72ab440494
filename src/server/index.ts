/**
 * The key-value service: the HTTP API over any `KvEngine`, its metrics and logging.
 */

export type { Refusal } from '../replica/refusal.ts';
export type {
  EngineStatus,
  KvEngine,
  MemberAddress,
  MemberStatus,
  PeerProgress,
  ReadConsistency,
  WatchHandle,
} from './engine.ts';
export { RefusedError } from './engine.ts';
export type { LogFormat, Logger, LoggerOptions } from './logger.ts';
export { createLogger, silentLogger } from './logger.ts';
export type { EngineMetrics, ServerMetricsOptions } from './metrics.ts';
export { ServerMetrics } from './metrics.ts';
export type { QuorateServer, ServerOptions } from './server.ts';
export { createServer } from './server.ts';
