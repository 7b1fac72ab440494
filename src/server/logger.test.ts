import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, formatLogLine } from './logger.ts';

describe('createLogger', () => {
  it('writes JSON lines that name the node, at or above the level', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger(3, { level: 'info', destination: sink });
    logger.debug('hidden');
    logger.info({ port: 2379 }, 'listening');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      node: 3,
      port: 2379,
      msg: 'listening',
      level: 30,
    });
  });

  it("writes a line for people with format 'text'", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger(2, { level: 'info', destination: sink, format: 'text' });
    logger.warn({ port: 2379, peer: { id: 3 } }, 'cannot reach peer');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.join('')).toMatch(
      /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN {2}node 2: cannot reach peer port=2379 peer=\{"id":3\}\n$/,
    );
    expect(formatLogLine('not json')).toBe('not json');
  });
});
