import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuorateClient } from '../client/client.ts';
import { UnreachableError } from '../client/errors.ts';
import type { KvChange } from '../kv/machine.ts';
import { makeCertificates } from '../runtime/certificates.ts';
import { startNode, stopNodes, type TestNode } from './testing/harness.ts';

type TestCertificates = Awaited<ReturnType<typeof makeCertificates>>;

describe('the client API over HTTPS', () => {
  let certs: TestCertificates;
  let stranger: TestCertificates;
  let node: TestNode;
  const started: TestNode[] = [];

  beforeAll(async () => {
    certs = await makeCertificates('127.0.0.1');
    stranger = await makeCertificates('127.0.0.1');
    node = await startNode({ id: 1 }, { tls: certs });
    started.push(node);
  });
  afterAll(() => stopNodes(...started));

  it('listens on an https URL and serves the typed client that trusts its CA', async () => {
    expect(node.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const client = new QuorateClient({ endpoints: [node.url], ca: certs.ca, retries: 0 });
    expect(await client.put('greeting', 'hello')).toMatchObject({ version: 1 });
    expect(await client.get('greeting')).toMatchObject({ entry: { value: 'hello' } });
    expect(await client.casVersion('greeting', 1, 'bye')).toMatchObject({ ok: true });
    expect((await client.list('greet')).entries.map((e) => e.value)).toEqual(['bye']);
  });

  it('streams a watch over HTTPS', async () => {
    const client = new QuorateClient({ endpoints: [node.url], ca: certs.ca, retries: 0 });
    const abort = new AbortController();
    const seen: KvChange[] = [];
    const watching = (async () => {
      for await (const change of client.watch('w/', { fromRevision: 0, signal: abort.signal })) {
        seen.push(change);
        if (seen.length === 2) abort.abort();
      }
    })();
    await client.put('w/a', '1');
    await client.put('w/b', '2');
    await watching;
    expect(seen.map((c) => c.key)).toEqual(['w/a', 'w/b']);
  });

  it('is refused by a client without the CA, or trusting another CA', async () => {
    const system = new QuorateClient({ endpoints: [node.url], retries: 0, timeoutMs: 2000 });
    await expect(system.get('greeting')).rejects.toThrow(/UNABLE_TO_VERIFY|SELF_SIGNED|CERT/);
    const wrong = new QuorateClient({
      endpoints: [node.url],
      ca: stranger.ca,
      retries: 0,
      timeoutMs: 2000,
    });
    await expect(wrong.get('greeting')).rejects.toThrow(/UNABLE_TO_VERIFY|SELF_SIGNED|CERT/);
    // A refused certificate means nothing was sent: the write surely did not apply.
    const writesBefore = node.engine.writes.length;
    await expect(wrong.put('greeting', 'x')).rejects.toBeInstanceOf(UnreachableError);
    expect(node.engine.writes.length).toBe(writesBefore);
  });

  it('gives no answer to plain HTTP on the HTTPS port', async () => {
    const plain = node.url.replace(/^https:/, 'http:');
    const outcome = await fetch(`${plain}/v1/kv/greeting`, { signal: AbortSignal.timeout(2000) })
      .then((res) => `HTTP ${res.status}`)
      .catch((err: Error) => `failed: ${err.message}`);
    expect(outcome).toMatch(/^failed/);
  });

  it('sends a client from a follower on to an https leader, trusting the same CA', async () => {
    const follower = await startNode({ id: 2 }, { tls: certs });
    started.push(follower);
    follower.engine.setMode({ kind: 'follower', leader: 1, leaderClientUrl: node.url });
    // The follower names the leader (421); the client's retry goes there itself.
    const client = new QuorateClient({ endpoints: [follower.url], ca: certs.ca, retries: 1 });
    await client.put('forwarded', 'yes');
    expect(node.engine.writes.some((w) => JSON.stringify(w).includes('forwarded'))).toBe(true);
    expect(client.target).toBe(node.url);
  });
});
