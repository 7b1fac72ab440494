import { Writable } from 'node:stream';
import { type Logger, pino } from 'pino';
import type { NodeId } from '../kernel/ids.ts';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** pino level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'. */
  readonly level?: string;
  /** Where JSON lines go; stderr by default, so stdout stays free for command output. */
  readonly destination?: NodeJS.WritableStream;
  /** 'json' (default): one JSON object a line, for machines; 'text': a line for people. */
  readonly format?: LogFormat;
}

export type LogFormat = 'json' | 'text';

/** A structured logger for one node: every line carries `node: <id>`. */
export function createLogger(nodeId: NodeId, options: LoggerOptions = {}): Logger {
  const out = options.destination ?? process.stderr;
  const root = pino(
    { level: options.level ?? 'info', base: { pid: process.pid } },
    options.format === 'text' ? textLines(out) : out,
  );
  return root.child({ node: nodeId });
}

const levelNames: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** Fields every line has, shown in the line's head rather than among the details. */
const headFields = new Set(['level', 'time', 'pid', 'node', 'msg']);

/**
 * `time LEVEL node N: message key=value ...` from pino's JSON lines (pino writes one whole
 * line per write). A line that is not JSON passes through unchanged.
 */
export function formatLogLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString() : '-';
  const level = levelNames[entry.level as number] ?? String(entry.level);
  const details = Object.entries(entry)
    .filter(([name]) => !headFields.has(name))
    .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const head = `${time} ${level.padEnd(5)} node ${String(entry.node ?? '-')}: ${String(entry.msg ?? '')}`;
  return [head, ...details].join(' ');
}

function textLines(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      const lines = chunk
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '');
      out.write(`${lines.map(formatLogLine).join('\n')}\n`);
      done();
    },
  });
}

/** A logger that drops everything: the default when the caller supplies none (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
