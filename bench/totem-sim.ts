/**
 * Totem, simulated measurements (issue 15; not a test). Each runs the pure cores on the small
 * deterministic host of src/totem/testing.ts (every message takes 1 ms), at corosync's
 * defaults unless a point says otherwise:
 *
 * 1. Datagrams per rotation against window and max per visit, with three saturated senders
 *    (1,300 B messages, one per datagram, queues kept full).
 * 2. Safe against agreed latency (publish to delivered on every node) at a moderate rate,
 *    beside the rotation time: safe should cost at most about one rotation more.
 * 3. Each active sender's share of the datagrams over 100 rotations (goal: within ±10 % of equal).
 * 4. Crash of a random member to the survivors' new regular configuration, over many
 *    crash instants: the distribution and its median (goal: ≤ token + 300 ms).
 *
 *     npm run bench:totem-sim     # prints all four, writes bench-results/totem-sim.json
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tokenTimeoutMs } from '../src/totem/config.ts';
import { TestRing } from '../src/totem/testing.ts';
import type { DeliveryMode } from '../src/totem/types.ts';

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!;
};
const pct = (xs: readonly number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
};

/** Keeps every sender's queue topped up, so each visit has all it may send. */
function saturate(t: TestRing, senders: readonly number[], until: number, size = 1300): void {
  let ref = 0;
  while (t.now < until) {
    for (const s of senders) {
      const depth = t.nodes.get(s)!.status().queued;
      for (let i = depth; i < 200; i++) {
        t.request(s, { type: 'publish', mode: 'agreed', data: new Uint8Array(size), ref: ++ref });
      }
    }
    t.runUntil(t.now + 20);
  }
}

/** Datagrams (new + resent) per rotation, rotations counted at the representative's visits. */
function perRotation(t: TestRing, from: number): number[] {
  const out: number[] = [];
  let current = -1;
  for (const { at, node, event } of t.events) {
    if (at < from || event.type !== 'visit') continue;
    if (node === 1) {
      if (current >= 0) out.push(current);
      current = 0;
    }
    if (current >= 0) current += event.sent + event.resent;
  }
  return out;
}

function rotationsPoint(window: number, max: number) {
  const t = new TestRing([1, 2, 3, 4, 5], { windowSize: window, maxMessagesPerVisit: max });
  t.runUntil(100);
  t.keepEvents = true;
  saturate(t, [2, 3, 4], 2100);
  const rot = perRotation(t, 600);
  return {
    window,
    maxPerVisit: max,
    rotations: rot.length,
    medianPerRotation: median(rot),
    maxPerRotation: Math.max(...rot),
  };
}

/** Publish at `everyMs` alternating modes; latency to delivered on all five nodes. */
function latencyPoint(everyMs: number) {
  const t = new TestRing([1, 2, 3, 4, 5]);
  t.runUntil(100);
  t.keepEvents = true;
  const sentAt = new Map<number, { at: number; mode: DeliveryMode }>();
  let ref = 0;
  for (let at = 200; at < 5200; at += everyMs) {
    t.runUntil(at);
    const mode: DeliveryMode = ref % 2 === 0 ? 'agreed' : 'safe';
    const node = 1 + (ref % 5);
    ref++;
    t.request(node, { type: 'publish', mode, data: new Uint8Array(64), ref });
    sentAt.set(ref, { at, mode });
  }
  t.runUntil(7000);
  // Publish n of node k is ref: match by origin through the published replies.
  const byOrigin = new Map<string, { at: number; mode: DeliveryMode }>();
  for (const r of t.replies) {
    if (r.reply.type !== 'published') continue;
    const s = sentAt.get(r.reply.ref)!;
    byOrigin.set(`${r.reply.origin.node}.${r.reply.origin.n}`, s);
  }
  const lastAt = new Map<string, number>();
  const seen = new Map<string, number>();
  for (const { at, item } of t.deliveredAt) {
    if (item.type !== 'message') continue;
    const k = `${item.origin.node}.${item.origin.n}`;
    lastAt.set(k, Math.max(lastAt.get(k) ?? 0, at));
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  const lat: Record<DeliveryMode, number[]> = { agreed: [], safe: [] };
  for (const [k, s] of byOrigin) if (seen.get(k) === 5) lat[s.mode].push(lastAt.get(k)! - s.at);
  const visits = t.events.filter((e) => e.node === 1 && e.event.type === 'token').map((e) => e.at);
  const gaps = visits.slice(1).map((v, i) => v - visits[i]!);
  const rotationMs = median(gaps);
  const agreedP50 = median(lat.agreed);
  const safeP50 = median(lat.safe);
  return {
    publishEveryMs: everyMs,
    agreed: { n: lat.agreed.length, p50: agreedP50, p99: pct(lat.agreed, 0.99) },
    safe: { n: lat.safe.length, p50: safeP50, p99: pct(lat.safe, 0.99) },
    rotationMsP50: rotationMs,
    safeWithinAgreedPlusRotation: safeP50 <= agreedP50 + rotationMs,
  };
}

function sharePoint(senders: readonly number[]) {
  const t = new TestRing([1, 2, 3, 4, 5]);
  t.runUntil(100);
  t.keepEvents = true;
  const from = 300;
  saturate(t, senders, from);
  const start = t.events.filter((e) => e.node === 1 && e.event.type === 'token').length;
  let rotations = 0;
  while (rotations < 100) {
    saturate(t, senders, t.now + 20);
    rotations = t.events.filter((e) => e.node === 1 && e.event.type === 'token').length - start;
  }
  const counts = new Map<number, number>(senders.map((s) => [s, 0]));
  for (const { at, event, node } of t.events) {
    if (at >= from && event.type === 'visit')
      counts.set(node, (counts.get(node) ?? 0) + event.sent);
  }
  const total = senders.reduce((a, s) => a + counts.get(s)!, 0);
  const equal = total / senders.length;
  const shares = senders.map((s) => ({
    sender: s,
    datagrams: counts.get(s)!,
    vsEqual: counts.get(s)! / equal - 1,
  }));
  return {
    senders: senders.length,
    rotations,
    shares,
    withinTenPercent: shares.every((x) => Math.abs(x.vsEqual) <= 0.1),
  };
}

function crashPoint(repetitions: number) {
  const times: number[] = [];
  let token = 0;
  for (let r = 0; r < repetitions; r++) {
    const t = new TestRing([1, 2, 3, 4, 5]);
    token = tokenTimeoutMs(t.config(1));
    t.runUntil(200);
    // Light traffic, so the ring is sometimes idle (token held) and sometimes busy.
    for (let i = 0; i < (r % 4) * 10; i++) {
      t.request(1 + (i % 5), { type: 'publish', mode: 'agreed', data: new Uint8Array(50), ref: i });
    }
    t.runUntil(300 + ((r * 137) % 1000));
    const victim = 1 + (r % 5);
    t.crash(victim);
    const at = t.now;
    t.runUntil(at + 3 * token);
    const survivor = victim === 1 ? 2 : 1;
    const formed = t.formedAt.get(survivor);
    if (formed !== undefined && formed > at) times.push(formed - at);
  }
  return {
    tokenMs: token,
    repetitions,
    formed: times.length,
    p50: median(times),
    p90: pct(times, 0.9),
    max: Math.max(...times),
    medianWithinTokenPlus300: median(times) <= token + 300,
  };
}

const result = {
  rotations: [rotationsPoint(50, 17), rotationsPoint(20, 10), rotationsPoint(100, 30)],
  latency: [latencyPoint(20), latencyPoint(5)],
  share: [sharePoint([2, 3, 4]), sharePoint([1, 2, 3, 4, 5])],
  crash: crashPoint(40),
};
console.log(JSON.stringify(result, null, 2));
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/totem-sim.json', `${JSON.stringify(result, null, 2)}\n`);
