import { type Logger, pino } from 'pino';
import type { NodeId } from '../kernel/ids.ts';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** pino level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'. */
  readonly level?: string;
  /** Where JSON lines go; stderr by default, so stdout stays free for command output. */
  readonly destination?: NodeJS.WritableStream;
}

/** A structured JSON logger for one node: every line carries `node: <id>`. */
export function createLogger(nodeId: NodeId, options: LoggerOptions = {}): Logger {
  const root = pino(
    { level: options.level ?? 'info', base: { pid: process.pid } },
    options.destination ?? process.stderr,
  );
  return root.child({ node: nodeId });
}

/** A logger that drops everything: the default when the caller supplies none (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
