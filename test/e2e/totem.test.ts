import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { waitUntil } from './harness.ts';
import { freePortRange } from './ports.ts';

/**
 * Totem with real processes (issue 15): three `quorate node --protocol totem` over sealed
 * UDP form one ring; messages published at all three are delivered in the same total order
 * at each; kill -9 of one: the other two re-form and keep delivering; restart: a ring of
 * three again, its ring seq above every earlier one (persisted before its joins).
 */
const bin = fileURLToPath(new URL('../../bin/quorate.mjs', import.meta.url));
const children = new Map<number, ChildProcess>();
let dir = '';

afterAll(async () => {
  for (const c of children.values()) if (c.exitCode === null) c.kill('SIGKILL');
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

interface Ring {
  readonly state: string;
  readonly ring: string;
  readonly members: number[];
}

interface Item {
  readonly type: 'message' | 'config';
  readonly kind?: string;
  readonly ring: string;
  readonly seq?: number;
  readonly data?: string;
  readonly members?: number[];
}

async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

function start(id: number, base: number, peers: string, secretFile: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      bin,
      ...['node', '--protocol', 'totem', '--id', String(id), '--data', join(dir, `n${id}`)],
      ...['--client-listen', `127.0.0.1:${base + 2 * (id - 1)}`, '--peers', peers],
      ...['--secret-file', secretFile, '--token-ms', '1000'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.set(id, child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes(' ready: ')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`node ${id} exited with ${code}`)));
  });
}

describe('quorate node --protocol totem, three real processes', () => {
  it('orders messages identically at every node, re-forms after kill -9, rejoins', async () => {
    dir = await mkdtemp(join(tmpdir(), 'quorate-totem-'));
    const secretFile = join(dir, 'secret');
    await writeFile(secretFile, 'a cluster secret of enough bytes\n');
    const base = await freePortRange(6);
    const url = (id: number) => `http://127.0.0.1:${base + 2 * (id - 1)}`;
    const peers = [1, 2, 3]
      .map((id) => `${id}=127.0.0.1:${base + 2 * (id - 1) + 1}@${url(id)}`)
      .join(',');
    await Promise.all([1, 2, 3].map((id) => start(id, base, peers, secretFile)));

    const ringOf = (ids: number[]) =>
      waitUntil(`one ring of ${ids.join(',')}`, async () => {
        const rings = await Promise.all(ids.map((id) => getJson<Ring>(`${url(id)}/ring`)));
        const first = rings[0];
        const same = rings.every(
          (r) =>
            r?.state === 'operational' && r.ring === first?.ring && r.members.join() === ids.join(),
        );
        return same ? first!.ring : undefined;
      });
    const publish = async (id: number, text: string, mode = 'agreed') => {
      const res = await fetch(`${url(id)}/publish?mode=${mode}`, { method: 'POST', body: text });
      expect(res.status).toBe(200);
    };
    const messages = async (id: number, ring: string) => {
      const all = await getJson<{ items: Item[] }>(`${url(id)}/deliveries?from=1`);
      return (all?.items ?? []).filter((i) => i.type === 'message' && i.ring === ring);
    };
    const sameOrder = (ids: number[], ring: string, count: number) =>
      waitUntil(`${count} messages in one order at ${ids.join(',')}`, async () => {
        const seqs = await Promise.all(ids.map((id) => messages(id, ring)));
        const keys = seqs.map((s) => s.map((m) => `${m.seq}:${m.data}`).join('|'));
        return seqs[0]!.length === count && keys.every((k) => k === keys[0]) ? seqs[0] : undefined;
      });

    const ring1 = await ringOf([1, 2, 3]);
    await Promise.all(
      [1, 2, 3].flatMap((id) =>
        Array.from({ length: 10 }, (_, k) => publish(id, `n${id}-${k}`, k % 2 ? 'safe' : 'agreed')),
      ),
    );
    const ordered = await sameOrder([1, 2, 3], ring1, 30);
    expect(new Set(ordered.map((m) => m.data)).size).toBe(30);

    children.get(3)!.kill('SIGKILL');
    const ring2 = await ringOf([1, 2]);
    expect(ring2).not.toBe(ring1);
    await Promise.all([publish(1, 'after-1'), publish(2, 'after-2', 'safe')]);
    await sameOrder([1, 2], ring2, 2);
    const config = await getJson<{ items: Item[] }>(`${url(1)}/deliveries?from=1`);
    const changes = config!.items.filter((i) => i.type === 'config').map((i) => i.kind);
    expect(changes.slice(-2)).toEqual(['transitional', 'regular']);

    await start(3, base, peers, secretFile);
    const ring3 = await ringOf([1, 2, 3]);
    expect(Number(ring3.split('.')[0])).toBeGreaterThan(Number(ring2.split('.')[0]));
    await publish(3, 'back');
    await sameOrder([1, 2, 3], ring3, 1);
    const metrics = await (await fetch(`${url(1)}/metrics`)).text();
    expect(metrics).toMatch(/quorate_totem_token_rotations_total [1-9]/);
    expect(metrics).toMatch(/quorate_totem_membership_rounds_total [1-9]/);
  }, 90_000);
});

describe('quorate up --protocol totem', () => {
  it('starts three nodes that form one ring and order a message, and stops them', async () => {
    const upDir = await mkdtemp(join(tmpdir(), 'quorate-totem-up-'));
    const base = await freePortRange(6);
    const up = spawn(
      process.execPath,
      [bin, 'up', '--protocol', 'totem', '--data', upDir, '--port-base', String(base), '--json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      let out = '';
      up.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
      });
      const line = await waitUntil('the endpoints line', async () =>
        out.split('\n').find((l) => l.startsWith('{"protocol":"totem"')),
      );
      const parsed = JSON.parse(line) as { ring: string; endpoints: { url: string }[] };
      expect(parsed.endpoints).toHaveLength(3);
      expect(parsed.ring).toMatch(/^\d+\.1$/);
      const res = await fetch(`${parsed.endpoints[1]!.url}/publish`, { method: 'POST', body: 'x' });
      expect(res.status).toBe(200);
      const exited = new Promise((resolve) => up.once('exit', resolve));
      up.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (up.exitCode === null) up.kill('SIGKILL');
      await rm(upDir, { recursive: true, force: true });
    }
  }, 60_000);
});
