import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QuorateError, UnreachableError } from '../../client/errors.ts';
import { fixFor, targetOf } from './client-options.ts';

const dir = mkdtempSync(join(tmpdir(), 'quorate-client-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('where the cluster commands find the cluster', () => {
  const file = join(dir, 'cluster.json');
  writeFileSync(
    file,
    JSON.stringify({ endpoints: ['https://127.0.0.1:1', 'https://127.0.0.1:3'], ca: 'tls/ca.pem' }),
  );

  it('takes endpoints and the CA (relative to the file) from the cluster file', () => {
    expect(targetOf({ cluster: file })).toEqual({
      endpoints: ['https://127.0.0.1:1', 'https://127.0.0.1:3'],
      caFile: join(dir, 'tls', 'ca.pem'),
    });
  });

  it('lets --endpoints and --ca win over the file', () => {
    expect(targetOf({ cluster: file, endpoints: 'http://h:2', ca: '/x.pem' })).toEqual({
      endpoints: ['http://h:2'],
      caFile: '/x.pem',
    });
  });

  it('refuses a named file that is missing or malformed, naming it', () => {
    expect(() => targetOf({ cluster: join(dir, 'none.json') })).toThrow(/none\.json/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"endpoints": "http://h:1"}');
    expect(() => targetOf({ cluster: bad })).toThrow(/expected \{"endpoints"/);
  });
});

describe('fixFor', () => {
  it('says to pass --ca for a certificate this client does not trust', () => {
    const err = new UnreachableError('https://127.0.0.1:2379: UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(fixFor(err)).toMatch(/pass --ca/);
  });

  it('says how to reach a cluster that does not answer, and nothing for other errors', () => {
    expect(fixFor(new UnreachableError('ECONNREFUSED'))).toMatch(/--endpoints or --cluster/);
    expect(fixFor(new QuorateError('not-found', 'no such key'))).toBeUndefined();
  });
});
