import { describe, expect, it } from 'vitest';
import { makeConfig } from './membership.ts';
import { SnapshotReceiver } from './snapshot.ts';
import { Network } from './testing.ts';
import type { SnapshotChunkMsg } from './types.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The test application: its state is the list of applied values, snapshotted as JSON. */
function appState(net: Network<string>, id: number): string[] {
  let state: string[] = [];
  for (const d of net.node(id).delivered) {
    if (d.kind === 'snapshot') state = JSON.parse(decoder.decode(d.snapshot.data)) as string[];
    else if (d.entry.kind === 'normal') state.push(d.entry.data);
  }
  return state;
}

function compact(net: Network<string>, id: number): void {
  const index = net.core(id).status().applied;
  const data = encoder.encode(JSON.stringify(appState(net, id)));
  expect(net.request(id, { type: 'compact', id: 1, index, data })).toEqual([
    { type: 'done', id: 1 },
  ]);
}

describe('log compaction and InstallSnapshot (Raft paper section 7)', () => {
  it('compacts the log up to an applied index and keeps working', () => {
    const net = new Network<string>({ ids: [1, 2, 3] });
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.run(100);
    compact(net, 1);
    const log = net.core(1).log();
    expect(log.snapshotIndex).toBe(6);
    expect(log.entry(6)).toBeUndefined();
    expect(log.term(6)).toBe(1);
    expect(net.node(1).disk.entries).toEqual([]);
    net.propose(1, 'v5');
    net.run(100);
    expect(appState(net, 2)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'v5']);
  });

  it('refuses to compact beyond what was applied', () => {
    const net = new Network<string>({ ids: [1] });
    net.elect(1);
    const bad = net.request(1, { type: 'compact', id: 3, index: 9, data: new Uint8Array() });
    expect(bad).toEqual([{ type: 'rejected', id: 3, reason: 'compact-out-of-range' }]);
  });

  it('streams a snapshot in chunks to a follower behind the compacted log, surviving lost chunks', () => {
    const net = new Network<string>({ ids: [1, 2, 3], raft: { snapshotChunkBytes: 16 } });
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 10; i++) net.propose(1, `value-${i}`);
    net.run(100);
    compact(net, 1);
    net.heal();
    let chunks = 0;
    let lost = 0;
    for (let step = 0; step < 200 && net.core(3).status().snapshotIndex === 0; step++) {
      net.elapse(5);
      while (net.inFlight.length > 0) {
        const e = net.inFlight[0];
        if (e?.msg.type === 'snapshotChunk' && ++chunks % 5 === 2) {
          net.inFlight.shift(); // lose every fifth chunk; the next heartbeat resends it
          lost++;
        } else net.deliverAt(0);
      }
    }
    expect(lost).toBeGreaterThan(0);
    expect(chunks).toBeGreaterThan(5);
    expect(net.core(3).status().snapshotIndex).toBe(11);
    net.propose(1, 'after');
    net.run(100);
    const expected = [...Array.from({ length: 10 }, (_, i) => `value-${i}`), 'after'];
    expect(appState(net, 3)).toEqual(expected);
    expect(net.node(3).events.filter((e) => e.type === 'snapshotInstalled')).toHaveLength(1);
    // A restart rebuilds the application from the durable snapshot and the entries after it.
    net.crash(3);
    net.restart(3);
    expect(appState(net, 3)).toEqual(expected);
  });

  it('receiver: reassembles in order, restarts on a new snapshot, and bounds memory', () => {
    const meta = { index: 5, term: 2, config: makeConfig([1, 2]) };
    const chunk = (offset: number, bytes: number[], total = 6): SnapshotChunkMsg => ({
      type: 'snapshotChunk',
      term: 2,
      meta,
      totalBytes: total,
      offset,
      data: new Uint8Array(bytes),
    });
    const r = new SnapshotReceiver(100);
    expect(r.accept(chunk(3, [4, 5, 6]))).toEqual({ kind: 'progress', nextOffset: 0 });
    expect(r.accept(chunk(0, [1, 2, 3]))).toEqual({ kind: 'progress', nextOffset: 3 });
    expect(r.accept(chunk(0, [1, 2, 3]))).toEqual({ kind: 'progress', nextOffset: 3 }); // duplicate
    const done = r.accept(chunk(3, [4, 5, 6]));
    expect(done.kind).toBe('complete');
    if (done.kind === 'complete') expect([...done.snapshot.data]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.accept(chunk(0, [], 101))).toEqual({ kind: 'tooLarge' });
    expect(r.bufferedBytes).toBe(0);
  });
});
