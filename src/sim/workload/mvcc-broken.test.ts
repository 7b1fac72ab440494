import { describe, expect, it } from 'vitest';
import { defaultKvLimits } from '../../kv/machine.ts';
import { defaultReplicaOptions } from '../../replica/raft-kv.ts';
import { parseFaults } from '../nemesis.ts';
import { raftSimProtocol } from '../raft/plugin.ts';
import { type RunResult, runSimulation } from '../run.ts';

// Proof that the workload's reads at past revisions and the revision model bite: the same
// sweep as `quorate sim raft --faults all`, on a state machine whose past-revision reads
// answer from the newest state, must report a violation, the same one again from its seed.
const broken = raftSimProtocol({
  name: 'raft-past-reads-newest',
  description: 'test fixture: Raft whose MVCC store ignores the revision of a past read',
  raft: {},
  replica: {
    ...defaultReplicaOptions,
    snapshotEveryEntries: 200,
    kvLimits: { ...defaultKvLimits, unsafeTestingFaults: { pastReadsNewest: true } },
  },
});

const SEEDS_MAX = 300;

function allFaults() {
  const faults = parseFaults('all', ['membership']);
  if (!faults.ok) throw new Error(faults.error);
  return faults.faults;
}

function firstViolation(nodes: number, protocol = broken): RunResult {
  for (let seed = 1; seed <= SEEDS_MAX; seed++) {
    const r = runSimulation(protocol, { seed, nodes, faults: allFaults() });
    if (r.verdict === 'violation') return r;
  }
  throw new Error(`no violation in ${SEEDS_MAX} seeds`);
}

describe('an MVCC store whose past reads return the newest value', () => {
  it('is caught by the revision model in the 5-node all-faults sweep, reproducibly', () => {
    const caught = firstViolation(5);
    expect(caught.message).toContain('revisions: read of');
    const again = runSimulation(broken, { seed: caught.seed, nodes: 5, faults: allFaults() });
    expect(again.message).toBe(caught.message);
    console.log(`past-reads-newest caught at seed ${caught.seed}: ${caught.message}`);
  }, 600_000);
});

// A txn whose writes each take a revision: every result still names one revision, the last,
// so a read at a past revision sees the first key's write at a revision its txn never named.
const perWrite = raftSimProtocol({
  name: 'raft-revision-per-write',
  description: 'test fixture: Raft whose MVCC store gives each write of a txn its own revision',
  raft: {},
  replica: {
    ...defaultReplicaOptions,
    snapshotEveryEntries: 200,
    kvLimits: { ...defaultKvLimits, unsafeTestingFaults: { revisionPerWrite: true } },
  },
});

describe('an MVCC store whose txns take a revision per write', () => {
  it('is caught by the revision model in the 5-node all-faults sweep, reproducibly', () => {
    const caught = firstViolation(5, perWrite);
    expect(caught.message).toContain('revisions:');
    const again = runSimulation(perWrite, { seed: caught.seed, nodes: 5, faults: allFaults() });
    expect(again.message).toBe(caught.message);
    console.log(`revision-per-write caught at seed ${caught.seed}: ${caught.message}`);
  }, 600_000);
});
