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

function firstViolation(nodes: number): RunResult {
  for (let seed = 1; seed <= SEEDS_MAX; seed++) {
    const r = runSimulation(broken, { seed, nodes, faults: allFaults() });
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
