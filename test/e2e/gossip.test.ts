import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type Agent,
  eventsOf,
  type MemberRow,
  membersOf,
  pollUntil,
  publish,
  startAgent,
  stopAgent,
  writeSecret,
} from './gossip-harness.ts';
import { freePorts } from './ports.ts';

/**
 * Five real gossip agents on loopback (SWIM, 1 s probes, memberlist's LAN defaults). The
 * failure-detection bound at n = 5: someone probes the killed agent within a probe round
 * (4 probes of 1 s, usually far less), then the suspicion lasts between its minimum,
 * 4·max(1, log10 5) = 4 s, and its maximum 6× that, 24 s; then a few gossip rounds.
 */
const SWIM_BOUND_MS = 4_000 + 24_000 + 2_000;

const root = mkdtempSync(join(tmpdir(), 'quorate-gossip-e2e-'));
const agents: Agent[] = [];

afterAll(async () => {
  await Promise.all(agents.map((a) => stopAgent(a, 'SIGKILL')));
  rmSync(root, { recursive: true, force: true });
});

function statusIn(rows: readonly MemberRow[] | undefined, id: number): MemberRow | undefined {
  return rows?.find((m) => m.id === id);
}

/** Polls every agent's view of `id` until each passes `ok`; records every status seen. */
async function watchAll(
  watchers: readonly Agent[],
  id: number,
  ok: (m: MemberRow | undefined) => boolean,
  timeoutMs: number,
): Promise<{ done: boolean; seen: Map<string, string[]>; ms: number }> {
  const seen = new Map<string, string[]>(watchers.map((w) => [w.name, []]));
  const started = Date.now();
  const done = await pollUntil(
    async () => {
      const views = await Promise.all(watchers.map((w) => membersOf(w.url)));
      let all = true;
      views.forEach((rows, i) => {
        const m = statusIn(rows, id);
        const trail = seen.get(watchers[i]!.name)!;
        if (m !== undefined && trail[trail.length - 1] !== m.status) trail.push(m.status);
        if (!ok(m)) all = false;
      });
      return all ? true : undefined;
    },
    timeoutMs,
    150,
  );
  return { done: done === true, seen, ms: Date.now() - started };
}

describe('gossip agents as real processes', () => {
  it('join through one seed, detect a kill -9, rejoin above the old incarnation, spread an event once, and leave gracefully', async () => {
    writeSecret(root);
    const ports = await freePorts(5);
    const seed = await startAgent({ name: 'g1', root, peerPort: ports[0]!, join: [] });
    agents.push(seed);
    const rest = await Promise.all(
      ports
        .slice(1)
        .map((p, i) =>
          startAgent({ name: `g${i + 2}`, root, peerPort: p, join: [`127.0.0.1:${ports[0]}`] }),
        ),
    );
    agents.push(...rest);

    // All see all alive.
    const joined = await pollUntil(async () => {
      const views = await Promise.all(agents.map((a) => membersOf(a.url)));
      return views.every((v) => v?.filter((m) => m.status === 'alive').length === 5)
        ? true
        : undefined;
    }, 20_000);
    expect(joined).toBe(true);

    // A user event reaches every agent, once.
    const sender = agents[1]!;
    expect((await publish(sender.url, 'deploy', 'v42')).status).toBe(200);
    const reached = await pollUntil(async () => {
      const feeds = await Promise.all(agents.map((a) => eventsOf(a.url)));
      return feeds.every((f) => f?.some((e) => e.name === 'deploy')) ? feeds : undefined;
    }, 10_000);
    expect(reached).toBeDefined();
    for (const f of reached!)
      expect(f!.filter((e) => e.type === 'event' && e.name === 'deploy')).toHaveLength(1);

    // kill -9: every other agent marks it suspect, then dead, within the SWIM bound.
    const victim = agents[4]!;
    const before = statusIn(await membersOf(seed.url), victim.id)!.incarnation;
    await stopAgent(victim, 'SIGKILL');
    const others = agents.slice(0, 4);
    const failed = await watchAll(others, victim.id, (m) => m?.status === 'dead', SWIM_BOUND_MS);
    expect(failed.done, JSON.stringify([...failed.seen])).toBe(true);
    for (const [name, trail] of failed.seen) {
      expect(trail, `${name} saw ${trail.join(' → ')}`).toEqual(['alive', 'suspect', 'dead']);
    }

    // Restarted with its data directory: alive again everywhere, at a higher incarnation.
    const back = await startAgent({
      name: victim.name,
      root,
      peerPort: victim.peerPort,
      join: [`127.0.0.1:${ports[0]}`],
    });
    agents[4] = back;
    expect(back.id).toBe(victim.id);
    const rejoined = await watchAll(
      others,
      victim.id,
      (m) => m?.status === 'alive' && m.incarnation > before,
      15_000,
    );
    expect(rejoined.done, JSON.stringify([...rejoined.seen])).toBe(true);

    // SIGTERM: a graceful leave, seen as "left", never "dead".
    const leaver = agents[3]!;
    await stopAgent(leaver, 'SIGTERM');
    expect(leaver.child.exitCode).toBe(0);
    const watchers = agents.filter((a) => a !== leaver);
    const left = await watchAll(watchers, leaver.id, (m) => m?.status === 'left', 10_000);
    expect(left.done, JSON.stringify([...left.seen])).toBe(true);
    // And it stays left: nobody turns it into a failure afterwards.
    await new Promise((r) => setTimeout(r, 3_000));
    for (const w of watchers)
      expect(statusIn(await membersOf(w.url), leaver.id)?.status).toBe('left');
  }, 150_000);
});
