import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Agent, startAgent, stopAgent, writeSecret } from './gossip-harness.ts';
import {
  storeDelete,
  storeGet,
  storePut,
  storeStatus,
  waitAlive,
  waitConverged,
} from './gossip-store-harness.ts';
import { freePorts } from './ports.ts';

/**
 * Five real gossip agents serving the anti-entropy store (`--store merkle`, one repair a
 * 300 ms with a random live peer). Convergence bound: a difference reaches a replica when
 * a repair chain links them; with five replicas each repairing every 300 ms, a few seconds
 * is generous; the loaded machine gets 30 s.
 */
const CONVERGE_MS = 30_000;
const STORE_ARGS = ['--store', 'merkle', '--repair-interval-ms', '300'];

const root = mkdtempSync(join(tmpdir(), 'quorate-gossip-store-e2e-'));
const agents: Agent[] = [];

afterAll(async () => {
  await Promise.all(agents.map((a) => stopAgent(a, 'SIGKILL')));
  rmSync(root, { recursive: true, force: true });
});

async function getAll(key: string): Promise<(string | null | undefined)[]> {
  return Promise.all(agents.map((a) => storeGet(a.url, key)));
}

describe('anti-entropy store on real gossip agents', () => {
  it('writes at several agents converge; a killed agent catches up after restart; a deleted key never comes back', async () => {
    writeSecret(root);
    const ports = await freePorts(5);
    const seedAt = `127.0.0.1:${ports[0]}`;
    const spec = (i: number) => ({
      name: `s${i + 1}`,
      root,
      peerPort: ports[i]!,
      join: i === 0 ? [] : [seedAt],
      extraArgs: STORE_ARGS,
    });
    agents.push(await startAgent(spec(0)));
    agents.push(...(await Promise.all([1, 2, 3, 4].map((i) => startAgent(spec(i))))));
    expect(await waitAlive(agents, 5, 20_000)).toBe(true);

    // Writes at three agents, and one key written at two (the later write wins everywhere).
    for (const [i, a] of agents.slice(0, 3).entries()) {
      for (let k = 0; k < 10; k++) {
        expect((await storePut(a.url, `a${i}/k${k}`, `v${i}.${k}`)).status).toBe(200);
      }
    }
    expect((await storePut(agents[0]!.url, 'both', 'first')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 5));
    expect((await storePut(agents[1]!.url, 'both', 'second')).status).toBe(200);
    expect((await storePut(agents[3]!.url, 'doomed', 'soon gone')).status).toBe(200);

    const first = await waitConverged(agents, CONVERGE_MS);
    expect(first, 'all roots equal').toBeDefined();
    for (const s of first!) expect(s.entries).toBe(32);
    expect(new Set(await getAll('a2/k7'))).toEqual(new Set(['v2.7']));
    expect(new Set(await getAll('both'))).toEqual(new Set(['second']));

    // kill -9 one agent; meanwhile the others write, overwrite and delete.
    const victim = agents[4]!;
    expect(await storeGet(victim.url, 'doomed')).toBe('soon gone');
    await stopAgent(victim, 'SIGKILL');
    const live = agents.slice(0, 4);
    expect((await storePut(live[2]!.url, 'while-down', 'new')).status).toBe(200);
    expect((await storePut(live[0]!.url, 'a1/k1', 'overwritten')).status).toBe(200);
    const del = await storeDelete(live[1]!.url, 'doomed');
    expect(del.status).toBe(200);
    expect(await waitConverged(live, CONVERGE_MS)).toBeDefined();

    // Restarted from its data directory: it still holds what it had (the log), then repair
    // brings it what it missed, and its old 'doomed' loses to the tombstone.
    const back = await startAgent({ ...spec(4), name: victim.name });
    agents[4] = back;
    expect(back.id).toBe(victim.id);
    const early = await storeStatus(back.url);
    expect(early?.entries).toBeGreaterThanOrEqual(32);
    const second = await waitConverged(agents, CONVERGE_MS);
    expect(second, 'the restarted agent caught up').toBeDefined();
    for (const s of second!) {
      expect(s.entries).toBe(33); // 32 + while-down; 'doomed' is now a tombstone
      expect(s.tombstones).toBe(1);
    }
    expect(await storeGet(back.url, 'while-down')).toBe('new');
    expect(await storeGet(back.url, 'a1/k1')).toBe('overwritten');

    // The deleted key stays deleted everywhere, repair after repair.
    for (let round = 0; round < 5; round++) {
      expect(new Set(await getAll('doomed'))).toEqual(new Set([null]));
      await new Promise((r) => setTimeout(r, 400));
    }
  }, 180_000);

  it('refuses what it must: too large (413), non-JSON writes (415), other origins (403)', async () => {
    const a = agents[0]!;
    const big = await storePut(a.url, 'big', 'x'.repeat(16 * 1024 + 1));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { message: string } }).error.message).toMatch(
      /valueBytesMax is 16384/,
    );
    const longKey = await storePut(a.url, 'k'.repeat(257), 'v');
    expect(longKey.status).toBe(413);
    const form = await fetch(`${a.url}/v1/store/x`, {
      method: 'PUT',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'value=1',
    });
    expect(form.status).toBe(415);
    const cross = await fetch(`${a.url}/v1/store/x`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ value: '1' }),
    });
    expect(cross.status).toBe(403);
    expect(await storeGet(a.url, 'big')).toBeNull();
    expect(await storeGet(a.url, 'x')).toBeNull();
  }, 30_000);

  it('a watch at one agent sees a put and a delete made at another, repaired to it', async () => {
    const [writer, watcher] = [agents[0]!, agents[1]!];
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 30_000);
    const res = await fetch(`${watcher.url}/v1/store-watch?prefix=w/`, { signal: ctl.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const seen: string[] = [];
    let text = '';
    const decoder = new TextDecoder();
    await reader.read(); // the ': watching' comment: the watcher is registered
    expect((await storePut(writer.url, 'w/1', 'watched')).status).toBe(200);
    expect((await storePut(writer.url, 'other', 'not watched')).status).toBe(200);
    expect((await storeDelete(writer.url, 'w/1')).status).toBe(200);
    try {
      while (!seen.includes('delete')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        for (const m of text.matchAll(/event: (\w+)\ndata: (.*)\n/g)) {
          const data = JSON.parse(m[2]!) as { key: string };
          if (!seen.includes(m[1]!)) seen.push(m[1]!);
          expect(data.key).toBe('w/1');
        }
      }
    } finally {
      clearTimeout(timer);
      ctl.abort();
    }
    // Repair may bring the put and the tombstone in one exchange: the delete is what must come.
    expect(seen).toContain('delete');
  }, 60_000);

  it('a write above --store-write-rate answers 429 with retry-after and stores nothing', async () => {
    const [port] = await freePorts(1);
    const solo = await startAgent({
      name: 'rate',
      root,
      peerPort: port!,
      join: [],
      extraArgs: [...STORE_ARGS, '--store-write-rate', '2'],
    });
    agents.push(solo);
    const codes: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 4; i++) {
      const res = await storePut(solo.url, `r${i}`, 'v');
      codes.push(res.status);
      if (res.status === 429) limited ??= res;
    }
    expect(codes.slice(0, 2)).toEqual([200, 200]);
    expect(limited, `codes ${codes.join(',')}`).toBeDefined();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await limited!.json()) as { error: { code: string }; retryAfterMs: number };
    expect(body.error.code).toBe('rate-limited');
    expect(body.retryAfterMs).toBeGreaterThan(0);
    const stored = await Promise.all([0, 1, 2, 3].map((i) => storeGet(solo.url, `r${i}`)));
    expect(stored.filter((v) => v === 'v')).toHaveLength(codes.filter((c) => c === 200).length);
  }, 60_000);
});
