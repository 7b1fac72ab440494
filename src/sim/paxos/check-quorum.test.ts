import { describe, expect, it } from 'vitest';
import { MULTI_PAXOS_DEFAULTS } from '../../paxos/multi/node.ts';
import { defaultRouterOptions } from '../../replica/router.ts';
import type { ScheduledAction } from '../nemesis.ts';
import { runSimulation } from '../run.ts';
import { multiPaxosSim } from './multi.ts';

/**
 * Check-quorum in the simulator: a partition isolates the Multi-Paxos leader. Within about
 * an election timeout the isolated node stops claiming leadership, so the client calls it
 * still receives are refused at once ("not leader") instead of being proposed where no
 * quorum can choose them and left to run to the client's deadline. Its router holds calls
 * for `leaderlessPatienceMs` after it last knew a leader (an election usually ends by then),
 * and refuses them at once after that.
 */
interface Rec {
  readonly t: number;
  readonly type: string;
  readonly id?: number;
  readonly from?: string;
  readonly to?: string;
  readonly msg?: {
    readonly type: string;
    readonly id?: number;
    readonly answer?: { readonly type: string; readonly refusal?: { readonly type: string } };
  };
}

const isolatedAtMs = 1_000;
const healAtMs = 3_000;

function run(seed: number, scenario: ScheduledAction[]) {
  const lines: string[] = [];
  const result = runSimulation(multiPaxosSim, {
    seed,
    nodes: 5,
    faults: [],
    clients: 8,
    ops: 600,
    scenario,
    trace: (l) => lines.push(l),
  });
  return { result, records: lines.map((l) => JSON.parse(l) as Rec) };
}

/** The node that last sent a heartbeat before `atMs`: the leader then. */
function leaderAt(records: readonly Rec[], atMs: number): number {
  let leader = 0;
  for (const r of records) {
    if (r.t >= atMs) break;
    if (r.type === 'send' && r.msg?.type === 'heartbeat') leader = Number(r.from?.slice(1));
  }
  return leader;
}

/** Client calls the node got in [fromMs, toMs), each with the delay and kind of its answer. */
function answers(records: readonly Rec[], node: number, fromMs: number, toMs: number) {
  const requests = new Map<string, number>(); // client/request id -> delivery time
  const out: { delayMs: number; kind: string }[] = [];
  const name = `n${node}`;
  const sentBy = new Map<number, Rec>();
  for (const r of records) {
    if (r.type === 'send' && r.id !== undefined) sentBy.set(r.id, r);
    if (r.type === 'deliver' && r.to === name && r.from?.startsWith('c')) {
      const sent = sentBy.get(r.id ?? -1);
      if (r.t >= fromMs && r.t < toMs && sent?.msg?.id !== undefined) {
        requests.set(`${r.from}/${sent.msg.id}`, r.t);
      }
    }
    if (r.type === 'send' && r.from === name && r.to?.startsWith('c') && r.msg?.id !== undefined) {
      const key = `${r.to}/${r.msg.id}`;
      const at = requests.get(key);
      if (at === undefined) continue;
      requests.delete(key);
      // A router answer: its refusal's type, or 'result'.
      const answer = r.msg.answer;
      out.push({ delayMs: r.t - at, kind: answer?.refusal?.type ?? answer?.type ?? r.msg.type });
    }
  }
  for (const _ of requests) out.push({ delayMs: Number.POSITIVE_INFINITY, kind: 'none' });
  return out;
}

describe('Multi-Paxos check-quorum under a partition that isolates the leader', () => {
  it.each([11, 12, 13])('seed %i: calls at the old leader are refused at once', (seed) => {
    const leader = leaderAt(run(seed, []).records, isolatedAtMs);
    expect(leader).toBeGreaterThan(0);
    const others = [1, 2, 3, 4, 5].filter((n) => n !== leader);
    const { result, records } = run(seed, [
      { atMs: isolatedAtMs, action: { type: 'partition', groups: [[leader], others] } },
      { atMs: healAtMs, action: { type: 'heal' } },
    ]);
    expect(result.verdict, result.message).toBe('pass');
    // One quorum check period to notice (the check may have just run), one to be sure; then
    // the router's patience for a new leader.
    const steppedDownBy = isolatedAtMs + 2 * MULTI_PAXOS_DEFAULTS.electionTimeoutMinMs;
    const refusingFrom = steppedDownBy + defaultRouterOptions.leaderlessPatienceMs;
    const late = answers(records, leader, refusingFrom, healAtMs);
    expect(late.length).toBeGreaterThan(3);
    const slow = late.filter((a) => a.delayMs > 1 || a.kind !== 'notLeader');
    expect(slow, `answers of node ${leader} while cut off`).toEqual([]);
  });
});
