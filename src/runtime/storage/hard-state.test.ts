import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HardStateStore } from './hard-state.ts';
import { FileHardStateStore, MemoryHardStateStore } from './hard-state.ts';

const bytes = (...b: number[]) => Uint8Array.from(b);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quorate-hs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const implementations: [string, () => Promise<HardStateStore>][] = [
  ['MemoryHardStateStore', () => Promise.resolve(new MemoryHardStateStore(8))],
  ['FileHardStateStore', () => FileHardStateStore.open(dir, 8)],
];

describe.each(implementations)('HardStateStore conformance: %s', (_name, make) => {
  it('starts empty, returns the last save, and is not changed by the caller mutating', async () => {
    const store = await make();
    expect(store.load()).toBeUndefined();
    const state = bytes(1, 2, 3);
    await Promise.all([store.save(bytes(9)), store.save(state)]);
    state[0] = 7;
    expect(store.load()).toEqual(bytes(1, 2, 3));
    await store.save(new Uint8Array(0));
    expect(store.load()).toEqual(new Uint8Array(0));
    await store.close();
  });

  it('refuses a state larger than its maximum', async () => {
    const store = await make();
    expect(() => store.save(new Uint8Array(9))).toThrow(/too big/);
    await store.close();
  });
});

describe('FileHardStateStore', () => {
  it('survives reopening', async () => {
    const store = await FileHardStateStore.open(dir, 8);
    for (let i = 1; i <= 5; i++) await store.save(bytes(i, i));
    await store.close();
    const again = await FileHardStateStore.open(dir, 8);
    expect(again.load()).toEqual(bytes(5, 5));
    await again.save(bytes(6));
    await again.close();
    expect((await FileHardStateStore.open(dir, 8)).load()).toEqual(bytes(6));
  });

  it('falls back to the previous state when the newest slot was torn', async () => {
    const store = await FileHardStateStore.open(dir, 8);
    await store.save(bytes(1)); // version 1, slot 1
    await store.save(bytes(2)); // version 2, slot 0
    await store.close();
    const file = await open(join(dir, 'hardstate'), 'r+');
    await file.write(bytes(0xff), 0, 1, 16); // damage slot 0's state byte
    await file.close();
    const reopened = await FileHardStateStore.open(dir, 8);
    expect(reopened.load()).toEqual(bytes(1));
    await reopened.save(bytes(3)); // must not reuse version 2's place wrongly
    await reopened.close();
    expect((await FileHardStateStore.open(dir, 8)).load()).toEqual(bytes(3));
  });
});
