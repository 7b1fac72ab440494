import { describe, expect, it } from 'vitest';
import type { KvCommand, KvResult } from '../../kv/machine.ts';
import { TOTEM_DEFAULTS } from '../../totem/config.ts';
import {
  applyReplicaPersist,
  emptyReplicaDurable,
  type ReplicaDurable,
  type ReplicaReply,
  TotemReplica,
} from '../../totem/replica.ts';
import { kvBinding } from './kv.ts';

/**
 * One isolated member, driven by hand: what the primary-component rule and durability mean
 * at a single node. (The simulator's `totem-kv` sweeps cover rings of 3 and 5.)
 */
type Node = TotemReplica<KvCommand, KvResult>;

function drive(
  node: Node,
  disk: { d: ReplicaDurable<KvCommand> },
  replies: ReplicaReply<KvResult>[],
  untilMs: number,
  now: { t: number },
) {
  for (let i = 0; i < 10_000 && now.t <= untilMs; i++) {
    for (let rd = node.ready(); rd !== undefined; rd = node.ready()) {
      for (const p of rd.persist) disk.d = applyReplicaPersist(disk.d, p);
      for (const r of [...rd.earlyReplies, ...rd.replies]) replies.push(r.reply);
      node.advance();
    }
    const next = Math.min(node.deadline(), untilMs + 1);
    now.t = Math.max(now.t + 1, next);
    if (now.t <= untilMs) node.tick(now.t);
  }
}

const put = (key: string, value: string, seq: number): KvCommand => ({
  session: 7,
  seq,
  op: { f: 'put', key, value },
});

describe('TotemReplica at one node', () => {
  it('a member alone among three is a minority: it refuses, and applies nothing', () => {
    const now = { t: 0 };
    const disk = { d: emptyReplicaDurable<KvCommand>() };
    const config = { ...TOTEM_DEFAULTS, tokenBaseMs: 200, id: 1, members: [1, 2, 3] };
    const node: Node = new TotemReplica(config, disk.d, 0, kvBinding);
    const replies: ReplicaReply<KvResult>[] = [];
    drive(node, disk, replies, 5_000, now);
    expect(node.status()).toMatchObject({ state: 'operational', members: [1], primary: false });
    node.request(now.t, 1, { type: 'command', attempt: 1, cmd: put('k', 'v', 1) });
    drive(node, disk, replies, now.t + 10, now);
    expect(replies).toEqual([{ type: 'refused', attempt: 1, reason: 'not-primary' }]);
    expect(disk.d.log).toEqual([]);
  });

  it('a cluster of one is primary: it synchronises, applies, persists, and restores after a restart', () => {
    const now = { t: 0 };
    const disk = { d: emptyReplicaDurable<KvCommand>() };
    const config = { ...TOTEM_DEFAULTS, id: 1, members: [1] };
    let node: Node = new TotemReplica(config, disk.d, 0, kvBinding);
    const replies: ReplicaReply<KvResult>[] = [];
    drive(node, disk, replies, 5_000, now);
    expect(node.status()).toMatchObject({ primary: true, synced: true });
    node.request(now.t, 1, { type: 'command', attempt: 1, cmd: put('k', 'v1', 1) });
    drive(node, disk, replies, now.t + 10, now);
    expect(replies).toEqual([
      { type: 'applied', attempt: 1, result: { f: 'put', revision: 1, version: 1 } },
    ]);
    expect(disk.d.log).toEqual([put('k', 'v1', 1)]);
    expect(disk.d.snapshot).toBeDefined();

    node = new TotemReplica(config, disk.d, now.t, kvBinding);
    expect(node.status().applied).toBe(1);
    drive(node, disk, replies, now.t + 5_000, now);
    node.request(now.t, 1, {
      type: 'command',
      attempt: 2,
      cmd: { session: 7, seq: 2, op: { f: 'get', key: 'k' } },
    });
    drive(node, disk, replies, now.t + 10, now);
    const got = replies.at(-1);
    expect(got).toMatchObject({
      type: 'applied',
      attempt: 2,
      result: { f: 'get', entry: { value: 'v1' } },
    });
    // A retried command of the session is answered from the session table, not applied twice.
    node.request(now.t, 1, { type: 'command', attempt: 3, cmd: put('k', 'v1', 1) });
    drive(node, disk, replies, now.t + 10, now);
    expect(replies.at(-1)).toMatchObject({ type: 'applied', attempt: 3, result: { f: 'stale' } });
  });
});
