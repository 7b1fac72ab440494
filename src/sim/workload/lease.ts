import { assert } from '../../kernel/assert.ts';
import type { ClientId, NodeId } from '../../kernel/ids.ts';
import { NO_NODE } from '../../kernel/ids.ts';
import type { Rng } from '../../kernel/rng.ts';
import { prefixEnd } from '../../kv/bytes.ts';
import type { KvOp, KvResult } from '../../kv/machine.ts';
import type { RoutedTypes, RouterTypes } from '../../replica/router.ts';
import type { CheckOutcome, Workload, WorkloadContext, WorkloadIo } from '../protocol.ts';

/**
 * A lease client for nodes hosted whole (router + replica): it grants leases, puts a key
 * attached to each, keeps some alive for a while and lets the others lapse, and checks what
 * the leader's lessor (src/replica/lessor.ts) promises:
 *
 * - safety: a lease whose keep-alive was answered is not revoked within its TTL of that
 *   keep-alive's sending (less `driftAllowance` of the TTL: the simulator drifts and jumps
 *   node clocks, and a lessor counts on its own clock as etcd's does);
 * - liveness: after healing, once a probe lease has been granted (so a leader serves), every
 *   lease no one keeps alive is seen revoked within TTL + `revokeSlackMs` of that grant, and
 *   no key attached to a lease outlives it.
 */
export interface LeaseWorkloadSettings {
  readonly ttlSeconds: number;
  /** Between keep-alives of a lease being kept alive (etcd's clients: a third of the TTL). */
  readonly keepAliveEveryMs: number;
  /** Most keep-alive rounds a kept lease gets before it is let go. */
  readonly keepRoundsMax: number;
  /** Share of the TTL a revoke may come early: clock drift and jumps of the deciding leader. */
  readonly driftAllowance: number;
  /** After the probe grant, beyond the TTL: an election after healing, a commit, one poll. */
  readonly revokeSlackMs: number;
  /** Between polls of a lapsed lease after healing. */
  readonly pollEveryMs: number;
  readonly attemptTimeoutMs: number;
  readonly backoffMs: number;
  /** Leases granted in the safety phase. */
  readonly leasesMax: number;
}

export const defaultLeaseSettings: LeaseWorkloadSettings = {
  ttlSeconds: 2,
  keepAliveEveryMs: 500,
  keepRoundsMax: 8,
  driftAllowance: 0.3,
  revokeSlackMs: 1000,
  pollEveryMs: 100,
  attemptTimeoutMs: 400,
  backoffMs: 5,
  leasesMax: 40,
};

const KEY_PREFIX = 'lease/';

interface LeaseState {
  readonly id: number;
  /** Keep-alive rounds left; 0: let go (lapsing). */
  rounds: number;
  /** When the last answered keep-alive (or the grant) was sent. */
  aliveSentAt: number;
  revoked: boolean;
}

type Step =
  | { readonly f: 'grant' }
  | { readonly f: 'put'; readonly lease: LeaseState }
  | { readonly f: 'keepAlive'; readonly lease: LeaseState }
  | { readonly f: 'poll' }
  | { readonly f: 'listKeys' };

export class LeaseWorkload<T extends RoutedTypes> implements Workload<RouterTypes<T>> {
  private io: WorkloadIo<RouterTypes<T>> | undefined;
  private readonly leases: LeaseState[] = [];
  private step: Step | undefined;
  /** When the step's attempt in flight was sent. */
  private stepSentAt = 0;
  /** When the step's first attempt was sent. */
  private stepBeganAt = 0;
  private seq = 0;
  private attemptId = 0;
  private token = 0;
  private target: NodeId;
  private granted = 0;
  private healed = false;
  private probe: { readonly lease: LeaseState | undefined; grantedAt: number } | undefined;
  private finished = false;
  /** The step waits for its pause to end before its next attempt (else for a reply). */
  private backingOff = false;
  private violation: string | undefined;
  private stats = { kept: 0, lapsed: 0, keepAlives: 0, revokedSeen: 0, lateMsMax: 0 };

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly client: ClientId,
    private readonly callTimeoutMs: number,
    private readonly settings: LeaseWorkloadSettings = defaultLeaseSettings,
  ) {
    assert(settings.ttlSeconds >= 1 && settings.keepAliveEveryMs >= 1, 'bad lease timing');
    assert(settings.keepAliveEveryMs < settings.ttlSeconds * 1000, 'keep-alives beyond the TTL');
    this.target = ctx.members[0]!;
  }

  private get rng(): Rng {
    return this.ctx.rng;
  }

  private get ttlMs(): number {
    return this.settings.ttlSeconds * 1000;
  }

  start(io: WorkloadIo<RouterTypes<T>>): void {
    this.io = io;
    this.later(0);
  }

  exhausted(): boolean {
    return this.granted >= this.settings.leasesMax;
  }

  heal(): void {
    this.healed = true;
    for (const l of this.leases) l.rounds = 0;
  }

  done(): boolean {
    return this.finished || this.violation !== undefined;
  }

  describePending(): string {
    const open = this.leases.filter((l) => !l.revoked).map((l) => l.id);
    const probe =
      this.probe === undefined ? 'no probe lease yet' : `probe granted at ${this.probe.grantedAt}`;
    return `lease client: ${probe}; leases not seen revoked: [${open.slice(0, 10).join(', ')}]`;
  }

  check(): CheckOutcome {
    if (this.violation !== undefined) return { verdict: 'violation', message: this.violation };
    const s = this.stats;
    return {
      verdict: 'pass',
      summary: `leases: ${this.granted} granted (${s.kept} kept alive, ${s.lapsed} let lapse), ${s.keepAlives} keep-alives, ${s.revokedSeen} seen revoked in time (after healing at most ${Math.round(s.lateMsMax)} ms past TTL)`,
    };
  }

  onTimer(_client: ClientId, token: number): void {
    if (token !== this.token || this.done()) return;
    if (this.step === undefined) this.next();
    else if (this.backingOff) this.attempt();
    else this.retry(this.nextNode(this.target)); // the attempt timed out
  }

  onReply(_client: ClientId, from: NodeId, reply: RouterTypes<T>['reply']): void {
    if (reply.type !== 'answer' || reply.id !== this.attemptId || this.step === undefined) return;
    if (this.backingOff || this.done()) return;
    const answer = reply.answer;
    if (answer.type === 'result') {
      this.onResult(this.step, answer.result);
      return;
    }
    const refusal = answer.refusal;
    const hint =
      refusal.type === 'notLeader' && refusal.leader !== NO_NODE ? refusal.leader : undefined;
    this.retry(hint ?? this.nextNode(from));
  }

  // -------------------------------------------------------------------------------------

  /** Picks the next step: keep alive what is due, grant a new lease, or (healed) poll. */
  private next(): void {
    const now = this.io!.now();
    if (this.healed) {
      this.nextHealed(now);
      return;
    }
    const due = this.leases.find(
      (l) => !l.revoked && l.rounds > 0 && l.aliveSentAt + this.settings.keepAliveEveryMs <= now,
    );
    if (due !== undefined) {
      this.begin({ f: 'keepAlive', lease: due });
      return;
    }
    if (this.granted < this.settings.leasesMax && this.rng.chance(0.3)) {
      this.begin({ f: 'grant' });
      return;
    }
    this.later(this.settings.keepAliveEveryMs / 5);
  }

  private nextHealed(now: number): void {
    if (this.probe === undefined) {
      this.begin({ f: 'grant' });
      return;
    }
    const open = this.leases.filter((l) => !l.revoked);
    const deadline = this.probe.grantedAt + this.ttlMs + this.settings.revokeSlackMs;
    if (open.length === 0) {
      this.begin({ f: 'listKeys' });
      return;
    }
    if (now > deadline) {
      const ids = open.map((l) => l.id).join(', ');
      this.fail(
        `lease liveness: lease(s) ${ids} not revoked ${now - this.probe.grantedAt} ms after a leader granted the probe lease (TTL ${this.ttlMs} ms, slack ${this.settings.revokeSlackMs} ms)`,
      );
      return;
    }
    this.begin({ f: 'poll' });
  }

  private begin(step: Step): void {
    this.step = step;
    this.stepBeganAt = this.io!.now();
    this.seq++;
    this.attempt();
  }

  private attempt(): void {
    this.backingOff = false;
    const io = this.io!;
    const step = this.step!;
    this.attemptId++;
    this.stepSentAt = io.now();
    const op = opOf(step, this.settings.ttlSeconds);
    const kind = step.f === 'grant' || step.f === 'put' ? 'write' : 'read';
    io.send(this.client, this.target, {
      type: 'call',
      id: this.attemptId,
      kind,
      session: this.client,
      seq: this.seq,
      op,
      timeoutMs: this.callTimeoutMs,
      forward: true,
    });
    io.setTimer(this.client, io.now() + this.settings.attemptTimeoutMs, ++this.token);
  }

  /** Asks again elsewhere after a pause: writes carry their session, so they apply once. */
  private retry(next: NodeId): void {
    this.target = next;
    const io = this.io!;
    const step = this.step!;
    if (step.f === 'keepAlive' && step.lease.aliveSentAt + this.ttlMs <= io.now()) {
      // Not kept alive in time: the lease may be gone by right. Let it lapse.
      this.letGo(step.lease);
      this.step = undefined;
      this.later(0);
      return;
    }
    this.backingOff = true;
    io.setTimer(this.client, io.now() + this.settings.backoffMs, ++this.token);
  }

  private onResult(step: Step, result: KvResult): void {
    const now = this.io!.now();
    switch (step.f) {
      case 'grant': {
        if (result.f !== 'leaseGrant') {
          this.unexpected(step, result);
          return;
        }
        // Granted by the first attempt perhaps (a retry is answered from the session): the
        // lease's countdown may have begun as early as that.
        const lease: LeaseState = {
          id: result.id,
          rounds: 0,
          aliveSentAt: this.stepBeganAt,
          revoked: false,
        };
        this.granted++;
        if (this.healed) {
          // The attempt answered reached a leader: the liveness bound counts from there.
          this.probe = { lease, grantedAt: this.stepSentAt };
        } else if (this.rng.chance(0.5)) {
          lease.rounds = 1 + this.rng.int(this.settings.keepRoundsMax);
          this.stats.kept++;
        } else {
          this.stats.lapsed++;
        }
        this.leases.push(lease);
        this.step = undefined;
        this.begin({ f: 'put', lease });
        return;
      }
      case 'put':
        // Refused as not found when the lease lapsed before the put reached it.
        if (result.f !== 'put' && !(result.f === 'error' && result.code === 'leaseNotFound')) {
          this.unexpected(step, result);
          return;
        }
        break;
      case 'keepAlive':
        if (result.f === 'leaseKeepAlive') {
          this.stats.keepAlives++;
          step.lease.aliveSentAt = this.stepSentAt;
          step.lease.rounds--;
          if (step.lease.rounds === 0) this.letGo(step.lease);
        } else if (result.f === 'error' && result.code === 'leaseNotFound') {
          this.seenRevoked(step.lease, now);
        } else {
          this.unexpected(step, result);
          return;
        }
        break;
      case 'poll':
        if (result.f === 'leaseLeases') {
          const live = new Set(result.leases);
          for (const l of this.leases) if (!live.has(l.id)) this.seenRevoked(l, now);
        } else {
          this.unexpected(step, result);
          return;
        }
        break;
      case 'listKeys':
        if (result.f !== 'range') {
          this.unexpected(step, result);
          return;
        }
        if (result.count !== 0) {
          const keys = result.kvs.map((kv) => kv.key).join(', ');
          this.fail(`lease keys outlived their leases: ${result.count} left (${keys})`);
          return;
        }
        this.finished = true;
        this.step = undefined;
        return;
    }
    this.step = undefined;
    this.later(this.healed ? this.settings.pollEveryMs : 0);
  }

  private letGo(lease: LeaseState): void {
    lease.rounds = 0;
  }

  /** The lease is gone at `now`: too early if a keep-alive answered within its TTL. */
  private seenRevoked(lease: LeaseState, now: number): void {
    if (lease.revoked) return;
    lease.revoked = true;
    const earliest = lease.aliveSentAt + this.ttlMs * (1 - this.settings.driftAllowance);
    if (now < earliest) {
      this.fail(
        `lease safety: lease ${lease.id} revoked by ${now} although a keep-alive sent at ${lease.aliveSentAt} was answered (TTL ${this.ttlMs} ms)`,
      );
      return;
    }
    this.stats.revokedSeen++;
    if (this.probe !== undefined) {
      const due = Math.max(lease.aliveSentAt, this.probe.grantedAt) + this.ttlMs;
      this.stats.lateMsMax = Math.max(this.stats.lateMsMax, now - due);
    }
  }

  private unexpected(step: Step, result: KvResult): void {
    this.fail(`lease client: unexpected result ${JSON.stringify(result)} to ${step.f}`);
  }

  private fail(message: string): void {
    this.violation ??= message;
    this.step = undefined;
  }

  private later(delayMs: number): void {
    const io = this.io!;
    io.setTimer(this.client, io.now() + delayMs, ++this.token);
  }

  private nextNode(after: NodeId): NodeId {
    const members = this.ctx.members;
    const i = members.indexOf(after);
    return members[(i + 1) % members.length]!;
  }
}

function opOf(step: Step, ttlSeconds: number): KvOp {
  switch (step.f) {
    case 'grant':
      return { f: 'leaseGrant', id: 0, ttl: ttlSeconds };
    case 'put':
      return {
        f: 'put',
        key: `${KEY_PREFIX}${step.lease.id}`,
        value: 'held',
        lease: step.lease.id,
      };
    case 'keepAlive':
      return { f: 'leaseKeepAlive', id: step.lease.id };
    case 'poll':
      return { f: 'leaseLeases' };
    case 'listKeys':
      return { f: 'range', key: KEY_PREFIX, rangeEnd: prefixEnd(KEY_PREFIX) };
  }
}

/**
 * The key-value workload with the lease client beside it: the last client id is the lease
 * client's (with fewer than two clients there is none), the others run `kv`.
 */
export function withLeaseClient<T extends RoutedTypes>(
  ctx: WorkloadContext,
  kv: (ctx: WorkloadContext) => Workload<RouterTypes<T>>,
  callTimeoutMs: number,
  settings: LeaseWorkloadSettings = defaultLeaseSettings,
): Workload<RouterTypes<T>> {
  const client = ctx.clients.at(-1);
  if (ctx.clients.length < 2 || client === undefined) return kv(ctx);
  const leases = new LeaseWorkload<T>(
    { ...ctx, rng: ctx.rng.fork() },
    client,
    callTimeoutMs,
    settings,
  );
  const kvs = kv({ ...ctx, clients: ctx.clients.slice(0, -1) });
  const of = (id: ClientId) => (id === client ? leases : kvs);
  return {
    start(io) {
      kvs.start(io);
      leases.start(io);
    },
    onReply: (id, from, reply) => of(id).onReply(id, from, reply),
    onTimer: (id, token) => of(id).onTimer(id, token),
    // The lease client keeps going until the key-value clients are through.
    exhausted: () => kvs.exhausted(),
    heal() {
      kvs.heal();
      leases.heal();
    },
    done: () => kvs.done() && leases.done(),
    describePending: () =>
      [kvs, leases]
        .filter((w) => !w.done())
        .map((w) => w.describePending())
        .join('; '),
    check() {
      // The key-value history first, as the KV workload puts linearizability first: a broken
      // replica or router then reads as the violation of the history it broke.
      const outcome = kvs.check();
      if (outcome.verdict === 'violation') return outcome;
      const lease = leases.check();
      if (lease.verdict !== 'pass') return lease;
      if (outcome.verdict !== 'pass') return outcome;
      return { verdict: 'pass', summary: `${outcome.summary}; ${lease.summary}` };
    },
  };
}
