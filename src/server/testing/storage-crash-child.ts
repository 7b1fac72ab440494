/**
 * Child process of the storage conformance test (../storage-conformance.test.ts): opens a
 * Raft or Multi-Paxos file store in a directory and persists a script's batches (rebuilt
 * from its seed) one at a time, each awaited as a host awaits a Ready batch. Then, by the
 * schedule in argv:
 *   crashAt = -1            close the store and exit 0 (a clean shutdown);
 *   0 <= crashAt <= count   start batch crashAt (if any) without awaiting it, wait `waitMs`
 *                           ms, and SIGKILL itself: every thread stops
 *                           at once, whatever the store had in flight.
 * Writes are O_DSYNC or synced before they complete, so the files a kill leaves are what a
 * power cut at that moment would leave, torn writes of the batch in flight included.
 */
import { MultiPaxosStorage } from '../multipaxos-storage.ts';
import { RaftStorage } from '../raft-storage.ts';
import { multiScript, raftScript, scriptConfig, scriptWal } from './storage-scripts.ts';

const [protocol, dir, seedArg, countArg, crashArg, waitArg] = process.argv.slice(2);
if (dir === undefined || waitArg === undefined) {
  throw new Error(
    'usage: storage-crash-child.ts raft|multipaxos <dir> <seed> <count> <crashAt> <waitMs>',
  );
}
const seed = Number(seedArg);
const count = Number(countArg);
const crashAt = Number(crashArg);
const waitMs = Number(waitArg);

/** The store under test, reduced to what the schedule needs. */
async function openStore(): Promise<{
  readonly count: number;
  persist(i: number): Promise<void>;
  close(): Promise<void>;
}> {
  if (protocol === 'raft') {
    const store = await RaftStorage.open({
      dir: dir as string,
      id: 1,
      bootstrap: scriptConfig,
      ...scriptWal,
    });
    const { batches } = raftScript(seed, count);
    return {
      count: batches.length,
      persist: (i) => store.persist(batches[i]!),
      close: () => store.close(),
    };
  }
  const store = await MultiPaxosStorage.open({
    dir: dir as string,
    id: 1,
    ...scriptWal,
  });
  const batches = multiScript(seed, count);
  return {
    count: batches.length,
    persist: (i) => store.persist(batches[i]!),
    close: () => store.close(),
  };
}

const store = await openStore();
for (let i = 0; i < (crashAt < 0 ? store.count : crashAt); i++) await store.persist(i);
if (crashAt < 0) {
  await store.close();
  process.exit(0);
}
if (crashAt < store.count) void store.persist(crashAt);
// Batches take from a fraction of a millisecond to a hundred (a leader's snapshot: several
// fsyncs), so the kill lands anywhere from before the first write to after the last.
await new Promise((wake) => setTimeout(wake, waitMs));
process.kill(process.pid, 'SIGKILL');
