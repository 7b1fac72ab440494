import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MerklePersist } from '../gossip/antientropy/index.ts';
import { encodeRecord, replay, STORE_LOG, StoreLog } from './gossip-store-log.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'quorate-store-log-'));
  dirs.push(d);
  return d;
}

const v = (wall: number) => ({ wall, logical: 0, node: 7 });
const put = (key: string, wall: number, value = 'x'): MerklePersist => ({
  type: 'entry',
  entry: { key, version: v(wall), value: new TextEncoder().encode(value) },
});
const del = (key: string, wall: number): MerklePersist => ({
  type: 'entry',
  entry: { key, version: v(wall), value: undefined },
});

describe('store log', () => {
  it('replays entries, tombstones (undefined, not null), forgets and the clock bound', async () => {
    const d = dir();
    const { log } = await StoreLog.open(d);
    await log.append([{ type: 'clock', wallBound: 100 }, put('a', 1), put('b', 2)]);
    await log.append([del('a', 3), { type: 'forget', key: 'b', version: v(2) }]);
    await log.close();
    const again = await StoreLog.open(d);
    expect(again.cut).toBe(0);
    expect(again.durable.clockBound).toBe(100);
    expect([...again.durable.entries.keys()]).toEqual(['a']);
    expect(again.durable.entries.get('a')?.value).toBeUndefined();
    expect(again.durable.entries.get('a')?.version).toEqual(v(3));
    await again.log.close();
  });

  it('a torn tail is cut at the last whole record, and appends continue after it', async () => {
    const d = dir();
    const { log } = await StoreLog.open(d);
    await log.append([put('a', 1), put('b', 2)]);
    await log.close();
    const path = join(d, STORE_LOG);
    const whole = statSync(path).size;
    const torn = encodeRecord(put('c', 3)).subarray(0, 11);
    writeFileSync(path, Buffer.concat([readFileSync(path), torn]));
    const r = await StoreLog.open(d);
    expect(r.cut).toBe(11);
    expect([...r.durable.entries.keys()].sort()).toEqual(['a', 'b']);
    expect(statSync(path).size).toBe(whole);
    await r.log.append([put('d', 4)]);
    await r.log.close();
    const after = await StoreLog.open(d);
    expect([...after.durable.entries.keys()].sort()).toEqual(['a', 'b', 'd']);
    await after.log.close();
  });

  it('a flipped byte fails the checksum: replay stops before that record', () => {
    const good = encodeRecord(put('a', 1));
    const bad = encodeRecord(put('b', 2));
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0x01;
    const bytes = new Uint8Array([...good, ...bad, ...encodeRecord(put('c', 3))]);
    const r = replay(bytes);
    expect(r.records).toBe(1);
    expect(r.goodBytes).toBe(good.length);
    expect([...r.durable.entries.keys()]).toEqual(['a']);
  });

  it('compacts at open when the log holds far more records than entries', async () => {
    const d = dir();
    const { log } = await StoreLog.open(d);
    const items: MerklePersist[] = [{ type: 'clock', wallBound: 5_000 }];
    for (let i = 1; i <= 3_000; i++) items.push(put('same', i, `v${i}`));
    await log.append(items);
    await log.close();
    const r = await StoreLog.open(d);
    expect(r.log.recordCount).toBe(2);
    expect(new TextDecoder().decode(r.durable.entries.get('same')?.value)).toBe('v3000');
    await r.log.close();
    const again = await StoreLog.open(d);
    expect(again.durable.clockBound).toBe(5_000);
    expect(again.durable.entries.get('same')?.version).toEqual(v(3_000));
    await again.log.close();
  });
});
