/**
 * TEST HARNESS ONLY: a single-process `KvEngine` that applies commands straight to a
 * `KvStateMachine`, with no consensus, WAL or network. The HTTP layer's tests use it to
 * exercise routes, forwarding, watch and retries; the real engines (Raft, Multi-Paxos) are
 * built elsewhere and run the same server code.
 */
import type { NodeId } from '../../kernel/ids.ts';
import {
  type AuthView,
  defaultKvLimits,
  type KvCommand,
  type KvFeedChange,
  type KvLimits,
  type KvReadOp,
  type KvResult,
  KvStateMachine,
} from '../../kv/machine.ts';
import {
  type EngineStatus,
  type KvEngine,
  type MemberAddress,
  type MemberStatus,
  type ReadConsistency,
  RefusedError,
  type WatchHandle,
} from '../engine.ts';

/** How the fixture behaves, switchable mid-test. */
export type MemoryEngineMode =
  | { readonly kind: 'leader' }
  /** Rejects leader-only calls with a notLeader refusal naming `leader` (0 = none known). */
  | { readonly kind: 'follower'; readonly leader: NodeId; readonly leaderClientUrl?: string }
  | { readonly kind: 'overloaded' }
  | { readonly kind: 'unavailable' };

/**
 * A fault injected after a write is applied: 'unavailable' rejects as outcome unknown
 * (an answer lost inside the cluster); 'hang' answers only after `hangMs` (an answer lost on
 * the wire, seen by the client as a timeout).
 */
export type AfterApplyFault = 'unavailable' | 'hang';

export interface MemoryEngineOptions {
  readonly id: NodeId;
  readonly clientUrl?: string;
  readonly limits?: KvLimits;
  readonly hangMs?: number;
}

export class MemoryEngine implements KvEngine {
  readonly id: NodeId;
  readonly machine: KvStateMachine;
  /** Commands given to `write`, including retries: the tests compare it with what applied. */
  readonly writes: KvCommand[] = [];
  private mode: MemoryEngineMode = { kind: 'leader' };
  private index = 0;
  private readonly watchers = new Set<(change: KvFeedChange) => void>();
  private readonly faults: AfterApplyFault[] = [];
  private readonly hung = new Set<() => void>();
  private readonly members = new Map<NodeId, MemberStatus>();
  private readonly hangMs: number;

  constructor(options: MemoryEngineOptions) {
    this.id = options.id;
    this.machine = new KvStateMachine(options.limits ?? defaultKvLimits);
    this.hangMs = options.hangMs ?? 10_000;
    this.members.set(this.id, {
      id: this.id,
      peerAddress: `127.0.0.1:${7000 + this.id}`,
      clientUrl: options.clientUrl ?? '',
      role: 'voter',
    });
  }

  setMode(mode: MemoryEngineMode): void {
    this.mode = mode;
  }

  /** The next writes each apply, then suffer these faults in order. */
  injectAfterApply(...faults: AfterApplyFault[]): void {
    this.faults.push(...faults);
  }

  /** Releases every hung answer; call before closing so no promise stays pending. */
  releaseHung(): void {
    for (const release of this.hung) release();
    this.hung.clear();
  }

  authView(): AuthView {
    return this.machine.auth;
  }

  async write(cmd: KvCommand): Promise<KvResult> {
    this.writes.push(cmd);
    this.checkLeader();
    this.index++;
    const before = this.machine.currentRevision;
    const result = this.machine.apply(this.index, cmd);
    this.publishSince(before);
    const fault = this.faults.shift();
    if (fault === 'unavailable') throw unknownOutcome('injected: answer lost');
    if (fault === 'hang') await this.hang();
    return result;
  }

  async read(op: KvReadOp, consistency: ReadConsistency): Promise<KvResult> {
    if (consistency === 'linearizable') this.checkLeader();
    return this.machine.read(op);
  }

  watch(fromRevision: number, onChange: (change: KvFeedChange) => void): WatchHandle | 'compacted' {
    const past = this.machine.changesSince(fromRevision);
    if (past === undefined) return 'compacted';
    for (const change of past) onChange(change);
    this.watchers.add(onChange);
    return { cancel: () => this.watchers.delete(onChange) };
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  status(): EngineStatus {
    const leading = this.mode.kind !== 'follower';
    const leader = this.mode.kind === 'follower' ? this.mode.leader : this.id;
    const self = this.members.get(this.id);
    return {
      id: this.id,
      protocol: 'raft',
      role: leading ? 'leader' : 'follower',
      term: 1,
      leader,
      leaderClientUrl:
        this.mode.kind === 'follower' ? this.mode.leaderClientUrl : (self?.clientUrl ?? undefined),
      commitIndex: this.index,
      appliedIndex: this.machine.appliedIndex,
      revision: this.machine.currentRevision,
      members: [...this.members.values()],
      progress: leading
        ? [...this.members.values()].map((m) => ({
            id: m.id,
            match: this.index,
            next: this.index + 1,
            state: 'replicate',
            recentActive: true,
          }))
        : undefined,
    };
  }

  async addLearner(member: MemberAddress): Promise<void> {
    this.checkLeader();
    if (!this.members.has(member.id)) this.members.set(member.id, { ...member, role: 'learner' });
    this.skipIndex();
  }

  async promote(id: NodeId): Promise<void> {
    this.checkLeader();
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`unknown member ${id}`);
    this.members.set(id, { ...member, role: 'voter' });
    this.skipIndex();
  }

  async remove(id: NodeId): Promise<void> {
    this.checkLeader();
    this.members.delete(id);
    this.skipIndex();
  }

  private skipIndex(): void {
    this.index++;
    this.machine.skip(this.index);
  }

  private checkLeader(): void {
    switch (this.mode.kind) {
      case 'leader':
        return;
      case 'follower':
        throw new RefusedError(
          { type: 'notLeader', leader: this.mode.leader },
          this.mode.leaderClientUrl,
        );
      case 'overloaded':
        throw new RefusedError({
          type: 'overloaded',
          reason: 'injected: too much uncommitted work',
        });
      case 'unavailable':
        throw unknownOutcome('injected: no quorum');
    }
  }

  private publishSince(revision: number): void {
    const changes = this.machine.changesSince(revision) ?? [];
    for (const change of changes) for (const watcher of this.watchers) watcher(change);
  }

  private hang(): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.hung.delete(release);
        resolve();
      };
      const timer = setTimeout(release, this.hangMs);
      this.hung.add(release);
    });
  }
}

/** What an engine rejects with when a call may have applied but no answer came. */
function unknownOutcome(reason: string): RefusedError {
  return new RefusedError({ type: 'outcomeUnknown', reason });
}
