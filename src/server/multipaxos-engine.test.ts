import { describe, expect, it } from 'vitest';
import { Rng } from '../kernel/rng.ts';
import type { KvResult } from '../kv/machine.ts';
import { MULTI_PAXOS_DEFAULTS } from '../paxos/multi/node.ts';
import {
  defaultMultiKvReplicaOptions,
  type MultiKvRequest,
  MultiPaxosKvReplica,
} from '../replica/multipaxos-kv.ts';

/**
 * What the engine relies on from the replica beyond the simulator's workloads: calls
 * without a session (every linearizable read the engine orders through the log, and
 * anonymous writes) all share (session 0, seq 0), yet each must get its own answer.
 */
describe('MultiPaxosEngine over the replica', () => {
  it('answers concurrent session-less calls each with its own result', () => {
    const config = { ...MULTI_PAXOS_DEFAULTS, id: 1, members: [1] };
    const options = { ...defaultMultiKvReplicaOptions, reads: 'log' as const };
    const replica = MultiPaxosKvReplica.restore(config, Rng.fromSeed(3), undefined, options);
    const results = new Map<number, KvResult>();
    const drain = () => {
      for (let rd = replica.ready(); rd !== undefined; rd = replica.ready()) {
        for (const r of rd.replies) {
          if (r.reply.type === 'result') results.set(r.reply.id, r.reply.result);
        }
        replica.advance();
      }
    };
    let now = 0;
    while (!replica.paxos.isLeader() && now < 10_000) {
      now += 50;
      replica.tick(now);
      drain();
    }
    expect(replica.paxos.isLeader()).toBe(true);
    const anonymous = (id: number, op: MultiKvRequest['op']): MultiKvRequest => ({
      type: 'kv',
      id,
      session: 0,
      seq: 0,
      op,
    });
    replica.request(now, 1, anonymous(1, { f: 'put', key: 'a', value: 'A' }));
    replica.request(now, 2, anonymous(2, { f: 'get', key: 'a' }));
    replica.request(now, 3, anonymous(3, { f: 'put', key: 'b', value: 'B' }));
    replica.request(now, 4, anonymous(4, { f: 'get', key: 'b' }));
    drain();
    expect(results.get(1)).toMatchObject({ f: 'put' });
    expect(results.get(2)).toMatchObject({ f: 'get', entry: { value: 'A' } });
    expect(results.get(3)).toMatchObject({ f: 'put' });
    expect(results.get(4)).toMatchObject({ f: 'get', entry: { value: 'B' } });
  });
});
