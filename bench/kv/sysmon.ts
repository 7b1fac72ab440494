/**
 * CPU accounting from /proc, so each point says how much CPU the servers, the load
 * generator and everything else (other jobs sharing the machine) used while it ran. On a
 * noisy machine a ratio is only worth something when `otherPct` is low for both systems.
 */
import { readFileSync } from 'node:fs';

/** USER_HZ on Linux. */
const TICKS_PER_SECOND = 100;

export interface CpuSnapshot {
  readonly atMs: number;
  readonly busyTicks: number;
  readonly serverTicks: number;
}

/** CPU used between two snapshots, in % of one core (200 = both cores of a 2-core box). */
export interface CpuUse {
  readonly busyPct: number;
  readonly serversPct: number;
  readonly loadgenPct: number;
  readonly otherPct: number;
}

function pidTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

function busyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return f.reduce((a, b) => a + b, 0) - idle;
}

export function snapshot(serverPids: readonly number[]): CpuSnapshot {
  return {
    atMs: Date.now(),
    busyTicks: busyTicks(),
    serverTicks: serverPids.reduce((sum, pid) => sum + pidTicks(pid), 0),
  };
}

/**
 * The load generator reports its own CPU time (it has exited by the second snapshot);
 * servers are read from /proc, so a member killed in between is under-counted.
 */
export function cpuUse(a: CpuSnapshot, b: CpuSnapshot, loadgenCpuMs: number): CpuUse {
  const seconds = Math.max(0.001, (b.atMs - a.atMs) / 1000);
  const pct = (ticks: number) => Math.round((ticks / TICKS_PER_SECOND / seconds) * 100);
  const busy = b.busyTicks - a.busyTicks;
  const servers = b.serverTicks - a.serverTicks;
  const load = (loadgenCpuMs / 1000) * TICKS_PER_SECOND;
  return {
    busyPct: pct(busy),
    serversPct: pct(servers),
    loadgenPct: pct(load),
    otherPct: pct(Math.max(0, busy - servers - load)),
  };
}
