import { describe, expect, it } from 'vitest';
import { defaultLessorOptions, type LeaseSource, type LeaseTtl, Lessor } from './lessor.ts';

/** A lease set as the machine would show it, versioned by every change. */
function source(leases: LeaseTtl[], version: number): LeaseSource {
  return { version, list: () => leases };
}

describe('Lessor', () => {
  it('decides nothing off the leader', () => {
    const lessor = new Lessor();
    lessor.sync(0, source([[1, 1]], 1));
    expect(lessor.size).toBe(0);
    expect(lessor.takeExpired(10_000)).toEqual([]);
    expect(lessor.deadline()).toBe(Number.POSITIVE_INFINITY);
  });

  it('expires a lease a TTL after its last keep-alive, and proposes its revoke once', () => {
    const lessor = new Lessor();
    lessor.promote(0, source([[7, 2]], 1));
    expect(lessor.deadline()).toBe(2000);
    expect(lessor.renew(1500, 7, 2)).toEqual({ ok: true, ttlSeconds: 2 });
    expect(lessor.takeExpired(2000)).toEqual([]);
    expect(lessor.deadline()).toBe(3500);
    expect(lessor.remainingMs(3000, 7)).toBe(500);
    expect(lessor.takeExpired(3500)).toEqual([7]);
    // Being revoked: not proposed again, and a keep-alive now is told it is gone.
    expect(lessor.takeExpired(4000)).toEqual([]);
    expect(lessor.renew(3600, 7, 2)).toEqual({ ok: false });
    lessor.revokeEnded(3600, 7);
    lessor.sync(3600, source([], 2));
    expect(lessor.size).toBe(0);
  });

  it('restarts every countdown at its full TTL on promotion (a failover expires nothing)', () => {
    const lessor = new Lessor();
    lessor.promote(0, source([[1, 1]], 1));
    lessor.demote();
    // Led again much later: the old deadline (1000) is gone, the countdown starts over.
    lessor.promote(5000, source([[1, 1]], 1));
    expect(lessor.takeExpired(5999)).toEqual([]);
    expect(lessor.takeExpired(6000)).toEqual([1]);
  });

  it('the broken variant keeps the deadlines a follower counted, and revokes at once', () => {
    const broken = new Lessor({
      ...defaultLessorOptions,
      unsafeTestingFaults: { keepDeadlinesOnPromote: true },
    });
    broken.sync(0, source([[1, 1]], 1));
    broken.promote(5000, source([[1, 1]], 1));
    expect(broken.takeExpired(5000)).toEqual([1]);
  });

  it('starts a lease granted while leading when it first sees it, and asks again after a failed revoke', () => {
    const lessor = new Lessor({ revokesInFlightMax: 1, revokeRetryMs: 100 });
    lessor.promote(0, source([], 0));
    lessor.sync(
      300,
      source(
        [
          [2, 1],
          [3, 1],
        ],
        4,
      ),
    );
    expect(lessor.takeExpired(1300)).toEqual([2]); // one in flight at most
    lessor.revokeEnded(1310, 2);
    expect(lessor.takeExpired(1310)).toEqual([3]);
    lessor.revokeEnded(1320, 3);
    lessor.sync(1320, source([[2, 1]], 5)); // 3's revoke applied
    expect(lessor.takeExpired(1400)).toEqual([]);
    expect(lessor.takeExpired(1410)).toEqual([2]);
  });

  it('refuses bounds that are not positive integers', () => {
    expect(() => new Lessor({ revokesInFlightMax: 0, revokeRetryMs: 1 })).toThrow(
      /revokesInFlightMax/,
    );
    expect(() => new Lessor({ revokesInFlightMax: 1, revokeRetryMs: 0.5 })).toThrow(
      /revokeRetryMs/,
    );
  });

  it('serves keep-alives and time-to-live on the leader only, with what is left of the TTL', () => {
    const lessor = new Lessor();
    const leases = source([[4, 3]], 1);
    const alive = { f: 'leaseKeepAlive', id: 4, ttl: 3, revision: 9 } as const;
    const ttl = {
      f: 'leaseTimeToLive',
      id: 4,
      grantedTtl: 3,
      remainingTtl: -1,
      keys: [],
      revision: 9,
    } as const;
    expect(lessor.serve(0, true, leases, alive)).toBeUndefined(); // not promoted yet
    lessor.promote(0, leases);
    expect(lessor.serve(0, false, leases, alive)).toBeUndefined();
    expect(lessor.serve(1000, true, leases, ttl)).toEqual({ ...ttl, remainingTtl: 2 });
    expect(lessor.serve(2500, true, leases, alive)).toEqual(alive);
    expect(lessor.serve(2600, true, leases, ttl)).toEqual({ ...ttl, remainingTtl: 3 });
    expect(lessor.serve(5500, true, leases, alive)).toEqual({
      f: 'error',
      code: 'leaseNotFound',
      lease: 4,
    });
    const range = { f: 'range', kvs: [], more: false, count: 0, revision: 9 } as const;
    expect(lessor.serve(0, false, leases, range)).toBe(range);
  });
});
