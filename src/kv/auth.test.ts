import { describe, expect, it } from 'vitest';
import { imageOf, KvStateMachine } from '../kv/machine.ts';
import { decodeKvSnapshot, encodeKvSnapshot } from '../replica/snapshot-codec.ts';
import { AuthStore, covers, type PasswordHash } from './auth.ts';
import { defaultKvLimits, type KvOp } from './index.ts';

const hash: PasswordHash = {
  scheme: 'scrypt',
  salt: 'c2FsdA==',
  hash: 'aGFzaA==',
  cost: 1024,
  blockSize: 8,
  parallelization: 1,
};

/** A store with root (enabled) and user alice holding role `r` with the given permissions. */
function store(
  perms: { permType: 'read' | 'write' | 'readwrite'; key: string; rangeEnd: string }[],
) {
  const s = new AuthStore();
  const ok = (op: Parameters<AuthStore['apply']>[0]) => {
    const r = s.apply(op, undefined);
    expect(r.f, JSON.stringify(r)).not.toBe('error');
  };
  ok({ f: 'userAdd', name: 'root', password: hash });
  ok({ f: 'roleAdd', name: 'root' });
  ok({ f: 'userGrantRole', user: 'root', role: 'root' });
  ok({ f: 'userAdd', name: 'alice', password: hash });
  ok({ f: 'roleAdd', name: 'r' });
  for (const perm of perms) ok({ f: 'roleGrantPermission', name: 'r', perm });
  ok({ f: 'userGrantRole', user: 'alice', role: 'r' });
  ok({ f: 'authEnable' });
  return s;
}

describe('auth permissions', () => {
  it('matches single keys, ranges, prefixes and open ends', () => {
    const s = store([
      { permType: 'read', key: 'k', rangeEnd: '' },
      { permType: 'readwrite', key: 'p/', rangeEnd: 'p0' },
      { permType: 'write', key: 'w', rangeEnd: '\0' },
    ]);
    const can = (key: string, rangeEnd: string | undefined, access: 'read' | 'write') =>
      s.checkRange('alice', rangeEnd === undefined ? { key } : { key, rangeEnd }, access) ===
      undefined;
    expect(can('k', undefined, 'read')).toBe(true);
    expect(can('k', undefined, 'write')).toBe(false);
    expect(can('k0', undefined, 'read')).toBe(false); // a key permission is not a prefix
    expect(can('p/a', undefined, 'write')).toBe(true);
    expect(can('p/', 'p0', 'read')).toBe(true);
    expect(can('p/', 'p1', 'read')).toBe(false); // reaches past the prefix
    expect(can('p', 'p0', 'read')).toBe(false); // starts before it
    expect(can('x', undefined, 'write')).toBe(true); // w.. is open-ended
    expect(can('w', '\0', 'write')).toBe(true);
    expect(can('a', '\0', 'write')).toBe(false);
    expect(can('x', undefined, 'read')).toBe(false);
    expect(s.checkRange('root', { key: 'a', rangeEnd: '\0' }, 'write')).toBeUndefined();
    expect(s.checkRange('bob', { key: 'k' }, 'read')).toEqual({
      f: 'error',
      code: 'permissionDenied',
    });
    expect(s.checkRange('', { key: 'k' }, 'read')).toEqual({ f: 'error', code: 'userEmpty' });
  });

  it('covers a range only by the union of permissions, without gaps', () => {
    const iv = (start: string, end: string | null) => ({ start, end });
    expect(covers([iv('a', 'c'), iv('c', 'e')], iv('b', 'd'))).toBe(true);
    expect(covers([iv('a', 'c'), iv('c\0', 'e')], iv('b', 'd'))).toBe(false); // "c" uncovered
    expect(covers([iv('c', 'e'), iv('a', 'c')], iv('a', null))).toBe(false);
    expect(covers([iv('c', null), iv('a', 'c')], iv('a', null))).toBe(true);
    expect(covers([], iv('a', 'b'))).toBe(false);
  });

  it('allows everything while auth is off', () => {
    const s = new AuthStore();
    expect(s.checkRange('', { key: 'k' }, 'write')).toBeUndefined();
    expect(s.checkAdmin('')).toBeUndefined();
  });
});

describe('auth store rules (etcd server/auth/store.go)', () => {
  it('needs a root user holding the root role before enabling', () => {
    const s = new AuthStore();
    expect(s.apply({ f: 'authEnable' }, undefined)).toEqual({
      f: 'error',
      code: 'rootUserNotExist',
    });
    s.apply({ f: 'userAdd', name: 'root', password: hash }, undefined);
    expect(s.apply({ f: 'authEnable' }, undefined)).toEqual({
      f: 'error',
      code: 'rootRoleNotExist',
    });
    expect(s.apply({ f: 'userGrantRole', user: 'root', role: 'root' }, undefined).f).toBe('auth');
    expect(s.apply({ f: 'authEnable' }, undefined).f).toBe('auth');
    expect(s.isEnabled).toBe(true);
  });

  it('keeps root while enabled, and checks the caller of every change', () => {
    const s = store([]);
    const rev = s.revision;
    expect(s.apply({ f: 'userDelete', name: 'root' }, 'root')).toEqual({
      f: 'error',
      code: 'invalidAuthMgmt',
    });
    expect(s.apply({ f: 'userRevokeRole', name: 'root', role: 'root' }, 'root').f).toBe('error');
    expect(s.apply({ f: 'roleDelete', role: 'root' }, 'root').f).toBe('error');
    expect(s.apply({ f: 'userAdd', name: 'eve', password: null }, 'alice')).toEqual({
      f: 'error',
      code: 'permissionDenied',
    });
    expect(s.apply({ f: 'userAdd', name: 'eve', password: null }, '')).toEqual({
      f: 'error',
      code: 'userEmpty',
    });
    expect(s.revision).toBe(rev); // nothing refused changed anything
    expect(s.user('eve')).toBeUndefined();
    // A user may read itself and the roles it holds, not others.
    expect(s.apply({ f: 'userGet', name: 'alice' }, 'alice').f).toBe('userGet');
    expect(s.apply({ f: 'userGet', name: 'root' }, 'alice').f).toBe('error');
    expect(s.apply({ f: 'roleGet', role: 'r' }, 'alice').f).toBe('roleGet');
    expect(s.apply({ f: 'userList' }, 'alice').f).toBe('error');
    // Deleting a role revokes it from its users; disabling lets root go.
    expect(s.apply({ f: 'roleDelete', role: 'r' }, 'root').f).toBe('auth');
    expect(s.user('alice')?.roles).toEqual([]);
    expect(s.apply({ f: 'authDisable' }, 'root').f).toBe('auth');
    expect(s.apply({ f: 'userDelete', name: 'root' }, undefined).f).toBe('auth');
  });

  it('answers etcd refusals for missing users, roles, grants and permissions', () => {
    const s = new AuthStore();
    const code = (op: Parameters<AuthStore['apply']>[0]) => {
      const r = s.apply(op, undefined);
      return r.f === 'error' ? r.code : r.f;
    };
    expect(code({ f: 'userAdd', name: '', password: null })).toBe('userEmpty');
    expect(code({ f: 'roleAdd', name: '' })).toBe('roleEmpty');
    expect(code({ f: 'userAdd', name: 'a', password: null })).toBe('auth');
    expect(code({ f: 'userAdd', name: 'a', password: null })).toBe('userAlreadyExist');
    expect(code({ f: 'userGrantRole', user: 'a', role: 'x' })).toBe('roleNotFound');
    expect(code({ f: 'userGrantRole', user: 'b', role: 'root' })).toBe('userNotFound');
    expect(code({ f: 'userRevokeRole', name: 'a', role: 'x' })).toBe('roleNotGranted');
    expect(code({ f: 'roleAdd', name: 'x' })).toBe('auth');
    expect(code({ f: 'roleAdd', name: 'x' })).toBe('roleAlreadyExist');
    expect(code({ f: 'roleRevokePermission', role: 'x', key: 'k', rangeEnd: '' })).toBe(
      'permissionNotGranted',
    );
    const perm = { permType: 'read', key: 'b', rangeEnd: 'a' } as const;
    expect(code({ f: 'roleGrantPermission', name: 'x', perm })).toBe('invalidAuthMgmt');
    // A grant of the same (key, rangeEnd) replaces its type.
    const k = { key: 'k', rangeEnd: '' };
    code({ f: 'roleGrantPermission', name: 'x', perm: { permType: 'read', ...k } });
    code({ f: 'roleGrantPermission', name: 'x', perm: { permType: 'write', ...k } });
    expect(s.apply({ f: 'roleGet', role: 'x' }, undefined)).toMatchObject({
      permissions: [{ permType: 'write', key: 'k', rangeEnd: '' }],
    });
  });

  it('voids tokens from before a password change (since)', () => {
    const s = store([]);
    const before = s.user('alice')?.since ?? 0;
    s.apply({ f: 'userChangePassword', name: 'alice', password: hash }, 'root');
    expect(s.user('alice')?.since).toBeGreaterThan(before);
  });
});

describe('the machine checks permissions when it applies', () => {
  function machine(faults?: { authAtEdgeOnly: boolean }): KvStateMachine {
    const m = new KvStateMachine({
      ...defaultKvLimits,
      ...(faults === undefined ? {} : { unsafeTestingFaults: faults }),
    });
    const ops: KvOp[] = [
      { f: 'userAdd', name: 'root', password: hash },
      { f: 'userGrantRole', user: 'root', role: 'root' },
      { f: 'userAdd', name: 'alice', password: hash },
      { f: 'roleAdd', name: 'r' },
      {
        f: 'roleGrantPermission',
        name: 'r',
        perm: { permType: 'readwrite', key: 'a/', rangeEnd: 'a0' },
      },
      { f: 'userGrantRole', user: 'alice', role: 'r' },
      { f: 'put', key: 'b', value: 'old' },
      { f: 'authEnable' },
    ];
    for (const [i, op] of ops.entries()) {
      expect(m.apply(i + 1, { session: 0, seq: 0, op }).f).not.toBe('error');
    }
    return m;
  }
  const as = (user: string, op: Exclude<KvOp, { f: 'asUser' }>): KvOp => ({
    f: 'asUser',
    user,
    op,
  });

  it('refuses writes outside the permissions and applies nothing of them', () => {
    const m = machine();
    const rev = m.currentRevision;
    let i = 100;
    const run = (op: KvOp) => m.apply(i++, { session: 0, seq: 0, op });
    expect(run(as('alice', { f: 'put', key: 'b', value: 'x' }))).toEqual({
      f: 'error',
      code: 'permissionDenied',
    });
    expect(run(as('', { f: 'put', key: 'a/1', value: 'x' }))).toEqual({
      f: 'error',
      code: 'userEmpty',
    });
    // A txn that only reads outside is refused too: compares need read permission.
    const txn = {
      f: 'txn',
      compare: [{ key: 'b', result: 'equal', target: 'version', version: 1 }],
      success: [{ f: 'put', key: 'a/1', value: 'x' }],
      failure: [],
    } as const;
    expect(run(as('alice', txn)).f).toBe('error');
    expect(run(as('alice', { f: 'compact', revision: 1 })).f).toBe('error');
    expect(m.currentRevision).toBe(rev);
    expect(m.read({ f: 'get', key: 'b' })).toMatchObject({ entry: { value: 'old' } });
    expect(run(as('alice', { f: 'put', key: 'a/1', value: 'x' })).f).toBe('put');
    expect(run(as('root', { f: 'put', key: 'b', value: 'new' })).f).toBe('put');
    // Revoking the permission takes effect at its place in the log.
    expect(
      run(as('root', { f: 'roleRevokePermission', role: 'r', key: 'a/', rangeEnd: 'a0' })).f,
    ).toBe('auth');
    expect(run(as('alice', { f: 'put', key: 'a/2', value: 'x' })).f).toBe('error');
  });

  it('catches the broken variant that trusts the edge: a revoke just before a write', () => {
    // Both machines saw the permission when the edge checked; the revoke is ordered first.
    const outcome = (m: KvStateMachine) => {
      m.apply(200, {
        session: 0,
        seq: 0,
        op: as('root', { f: 'roleRevokePermission', role: 'r', key: 'a/', rangeEnd: 'a0' }),
      });
      return m.apply(201, {
        session: 0,
        seq: 0,
        op: as('alice', { f: 'put', key: 'a/1', value: 'x' }),
      }).f;
    };
    expect(outcome(machine())).toBe('error');
    expect(outcome(machine({ authAtEdgeOnly: true }))).toBe('put');
  });

  it('keeps the auth store in the snapshot', () => {
    const m = machine();
    const restored = decodeKvSnapshot(encodeKvSnapshot(m.snapshot()));
    expect(restored.auth.isEnabled).toBe(true);
    expect(restored.auth.revision).toBe(m.auth.revision);
    expect(restored.auth.checkRange('alice', { key: 'a/x' }, 'write')).toBeUndefined();
    expect(restored.auth.checkRange('alice', { key: 'b' }, 'write')).toBeDefined();
    expect(imageOf(restored.snapshot()).auth).toEqual(imageOf(m.snapshot()).auth);
  });
});

describe('an op as a user', () => {
  it('counts its inner op for flow control and validates strictly', async () => {
    const { checkKvOp, opSizeBytes } = await import('./validate.ts');
    const put = { f: 'put', key: 'k', value: 'x'.repeat(1000) } as const;
    expect(opSizeBytes({ f: 'asUser', user: 'alice', op: put })).toBeGreaterThan(1000);
    expect(checkKvOp({ f: 'asUser', user: 'alice', op: put }).ok).toBe(true);
    expect(checkKvOp({ f: 'asUser', user: 'a', op: { f: 'asUser', user: 'b', op: put } }).ok).toBe(
      false,
    );
    expect(checkKvOp({ f: 'userAdd', name: 'u', password: { scheme: 'md5' } }).ok).toBe(false);
    expect(
      checkKvOp({
        f: 'roleGrantPermission',
        name: 'r',
        perm: { permType: 'readwrite', key: 'a', rangeEnd: '' },
      }).ok,
    ).toBe(true);
  });
});
