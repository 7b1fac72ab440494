import type { Bytes } from './bytes.ts';
import type { KeyRange } from './ops.ts';

/**
 * etcd's authentication store (server/auth/store.go) as replicated state: users with salted
 * password hashes and roles, roles with key-range permissions, whether auth is enabled, and
 * an auth revision bumped by every change. It is pure and deterministic like the rest of the
 * machine: password hashing and token signing need randomness and a clock, so they happen at
 * the edge (src/server/auth/); this store only keeps the hash the edge computed and answers
 * who may do what.
 *
 * etcd's rules are kept: enabling needs a user `root` holding the role `root`; while enabled,
 * the root user cannot be deleted nor lose the root role, and the root role cannot be
 * deleted; the role `root` may be granted before it is created and means every permission;
 * a deleted role is revoked from every user.
 */

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

/** authpb.Permission.Type. */
export type PermType = 'read' | 'write' | 'readwrite';

/** authpb.Permission: `rangeEnd` '' = the key alone, '\0' = every key >= `key`. */
export interface AuthPermission {
  readonly permType: PermType;
  readonly key: Bytes;
  readonly rangeEnd: Bytes;
}

/**
 * A password as the edge hashed it (scrypt, RFC 7914): salt and hash in base64, and the
 * parameters it was hashed with, so a later change of the defaults still verifies old ones.
 */
export interface PasswordHash {
  readonly scheme: 'scrypt';
  readonly salt: string;
  readonly hash: string;
  /** scrypt's N (CPU/memory cost), r (block size) and p (parallelization). */
  readonly cost: number;
  readonly blockSize: number;
  readonly parallelization: number;
}

export interface AuthUser {
  readonly name: string;
  /** null: the user has no password (etcd's NoPassword) and cannot authenticate with one. */
  readonly password: PasswordHash | null;
  /** Sorted, no duplicates. */
  readonly roles: readonly string[];
  /**
   * The auth revision of the user's creation or last password change: tokens issued at an
   * earlier revision are void, as etcd invalidates a user's tokens on those changes.
   */
  readonly since: number;
}

export interface AuthRole {
  readonly name: string;
  /** Sorted by (key, rangeEnd), one per (key, rangeEnd). */
  readonly permissions: readonly AuthPermission[];
}

/** The whole store, as a snapshot carries it. */
export interface AuthImage {
  readonly enabled: boolean;
  readonly revision: number;
  /** Sorted by name. */
  readonly users: readonly AuthUser[];
  readonly roles: readonly AuthRole[];
}

export const emptyAuthImage: AuthImage = { enabled: false, revision: 0, users: [], roles: [] };

/** The auth requests of etcdserverpb (field names in camelCase), as the machine applies them. */
export type AuthWriteOp =
  | { readonly f: 'authEnable' }
  | { readonly f: 'authDisable' }
  | { readonly f: 'userAdd'; readonly name: string; readonly password: PasswordHash | null }
  | { readonly f: 'userDelete'; readonly name: string }
  | {
      readonly f: 'userChangePassword';
      readonly name: string;
      readonly password: PasswordHash | null;
    }
  | { readonly f: 'userGrantRole'; readonly user: string; readonly role: string }
  | { readonly f: 'userRevokeRole'; readonly name: string; readonly role: string }
  | { readonly f: 'roleAdd'; readonly name: string }
  | { readonly f: 'roleDelete'; readonly role: string }
  | { readonly f: 'roleGrantPermission'; readonly name: string; readonly perm: AuthPermission }
  | {
      readonly f: 'roleRevokePermission';
      readonly role: string;
      readonly key: Bytes;
      readonly rangeEnd: Bytes;
    };

/**
 * The auth reads. etcd orders them through the log like writes (they need the admin check
 * at apply time), and so do we; `authLookup` is what Authenticate reads: the user's hash.
 */
export type AuthReadOp =
  | { readonly f: 'authStatus' }
  | { readonly f: 'userGet'; readonly name: string }
  | { readonly f: 'userList' }
  | { readonly f: 'roleGet'; readonly role: string }
  | { readonly f: 'roleList' }
  | { readonly f: 'authLookup'; readonly name: string };

export type AuthOp = AuthWriteOp | AuthReadOp;

export type AuthResult =
  /** Any change (or a change that was already so, like enabling twice): the revision after. */
  | { readonly f: 'auth'; readonly revision: number }
  | { readonly f: 'authStatus'; readonly enabled: boolean; readonly revision: number }
  | { readonly f: 'userGet'; readonly roles: readonly string[]; readonly revision: number }
  | { readonly f: 'userList'; readonly users: readonly string[]; readonly revision: number }
  | {
      readonly f: 'roleGet';
      readonly permissions: readonly AuthPermission[];
      readonly revision: number;
    }
  | { readonly f: 'roleList'; readonly roles: readonly string[]; readonly revision: number }
  | {
      readonly f: 'authLookup';
      readonly enabled: boolean;
      readonly user: AuthUser | null;
      readonly revision: number;
    }
  | AuthError;

/** Why an auth request (or a call checked against auth) was refused; nothing changed. */
export type AuthErrorCode =
  | 'authNotEnabled'
  | 'rootUserNotExist'
  | 'rootRoleNotExist'
  | 'userAlreadyExist'
  | 'userEmpty'
  | 'userNotFound'
  | 'roleAlreadyExist'
  | 'roleNotFound'
  | 'roleEmpty'
  | 'permissionDenied'
  | 'roleNotGranted'
  | 'permissionNotGranted'
  | 'invalidAuthMgmt';

export interface AuthError {
  readonly f: 'error';
  readonly code: AuthErrorCode;
}

export const authErrorCodes: readonly AuthErrorCode[] = [
  'authNotEnabled',
  'rootUserNotExist',
  'rootRoleNotExist',
  'userAlreadyExist',
  'userEmpty',
  'userNotFound',
  'roleAlreadyExist',
  'roleNotFound',
  'roleEmpty',
  'permissionDenied',
  'roleNotGranted',
  'permissionNotGranted',
  'invalidAuthMgmt',
];

/** etcd's message for each (api/v3rpc/rpctypes/error.go). */
export function authErrorMessage(code: AuthErrorCode): string {
  switch (code) {
    case 'authNotEnabled':
      return 'etcdserver: authentication is not enabled';
    case 'rootUserNotExist':
      return 'etcdserver: root user does not exist';
    case 'rootRoleNotExist':
      return 'etcdserver: root user does not have root role';
    case 'userAlreadyExist':
      return 'etcdserver: user name already exists';
    case 'userEmpty':
      return 'etcdserver: user name is empty';
    case 'userNotFound':
      return 'etcdserver: user name not found';
    case 'roleAlreadyExist':
      return 'etcdserver: role name already exists';
    case 'roleNotFound':
      return 'etcdserver: role name not found';
    case 'roleEmpty':
      return 'etcdserver: role name is empty';
    case 'permissionDenied':
      return 'etcdserver: permission denied';
    case 'roleNotGranted':
      return 'etcdserver: role is not granted to the user';
    case 'permissionNotGranted':
      return 'etcdserver: permission is not granted to the role';
    case 'invalidAuthMgmt':
      return 'etcdserver: invalid auth management';
  }
}

/** The gRPC code etcd sends each with. */
export function authErrorGrpcCode(
  code: AuthErrorCode,
): 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION' | 'PERMISSION_DENIED' {
  switch (code) {
    case 'userEmpty':
    case 'roleEmpty':
    case 'invalidAuthMgmt':
      return 'INVALID_ARGUMENT';
    case 'permissionDenied':
      return 'PERMISSION_DENIED';
    default:
      return 'FAILED_PRECONDITION';
  }
}

const AUTH_OPS: ReadonlySet<string> = new Set<AuthOp['f']>([
  'authEnable',
  'authDisable',
  'userAdd',
  'userDelete',
  'userChangePassword',
  'userGrantRole',
  'userRevokeRole',
  'roleAdd',
  'roleDelete',
  'roleGrantPermission',
  'roleRevokePermission',
  'authStatus',
  'userGet',
  'userList',
  'roleGet',
  'roleList',
  'authLookup',
]);

export function isAuthOp(op: { readonly f: string }): op is AuthOp {
  return AUTH_OPS.has(op.f);
}

/** etcd's isValidPermissionRange: a key, and an end that is open, absent, or after it. */
export function isValidPermissionRange(key: Bytes, rangeEnd: Bytes): boolean {
  if (key === '') return false;
  return rangeEnd === '' || rangeEnd === '\0' || key < rangeEnd;
}

/** One interval [start, end) of keys; end null = no end. */
interface Interval {
  readonly start: Bytes;
  readonly end: Bytes | null;
}

/** The keys a range or permission covers, as an interval: a single key k is [k, k + "\0"). */
function intervalOf(key: Bytes, rangeEnd: Bytes): Interval {
  if (rangeEnd === '') return { start: key, end: `${key}\0` };
  if (rangeEnd === '\0') return { start: key, end: null };
  return { start: key, end: rangeEnd };
}

/**
 * Whether the union of `perms` covers all of `want` (etcd's interval-tree `Contains`): a
 * range is permitted only when every key in it is, however many permissions that takes.
 */
export function covers(perms: readonly Interval[], want: Interval): boolean {
  if (want.end !== null && want.end <= want.start) {
    // An empty range names no key; etcd checks such a request as its start key.
    return covers(perms, { start: want.start, end: `${want.start}\0` });
  }
  const sorted = [...perms].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  let reached = want.start;
  for (const p of sorted) {
    if (p.start > reached) return false;
    if (p.end === null) return true;
    if (p.end > reached) reached = p.end;
    if (want.end !== null && reached >= want.end) return true;
  }
  return false;
}

/** What a permission check needs: who asks, and the auth state it is checked against. */
export type Access = 'read' | 'write';

function comparePerm(a: AuthPermission, b: AuthPermission): number {
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  if (a.rangeEnd !== b.rangeEnd) return a.rangeEnd < b.rangeEnd ? -1 : 1;
  return 0;
}

/**
 * The store. Mutable, owned by the state machine; `image()` is an immutable copy for
 * snapshots, `restore` its inverse.
 */
export class AuthStore {
  private enabled = false;
  private rev = 0;
  private readonly users = new Map<string, AuthUser>();
  private readonly roles = new Map<string, AuthRole>();

  get isEnabled(): boolean {
    return this.enabled;
  }

  get revision(): number {
    return this.rev;
  }

  user(name: string): AuthUser | undefined {
    return this.users.get(name);
  }

  /** Whether `user` holds `role` (etcd's HasRole). */
  hasRole(user: string, role: string): boolean {
    return this.users.get(user)?.roles.includes(role) ?? false;
  }

  /**
   * etcd's IsAdminPermitted: undefined when `user` may administer (auth off, or the user
   * holds the root role), else why not.
   */
  checkAdmin(user: string): AuthError | undefined {
    if (!this.enabled) return undefined;
    if (user === '') return { f: 'error', code: 'userEmpty' };
    const u = this.users.get(user);
    if (u === undefined) return { f: 'error', code: 'userNotFound' };
    return u.roles.includes(ROOT_ROLE) ? undefined : { f: 'error', code: 'permissionDenied' };
  }

  /** A call that needs a known user and nothing more (a lease grant, a member list). */
  checkUser(user: string): AuthError | undefined {
    if (!this.enabled) return undefined;
    if (user === '') return { f: 'error', code: 'userEmpty' };
    return this.users.has(user) ? undefined : { f: 'error', code: 'permissionDenied' };
  }

  /**
   * etcd's isOpPermitted: may `user` read (or write) every key of `range`? Undefined when
   * so (or auth is off), else why not.
   */
  checkRange(user: string, range: KeyRange, access: Access): AuthError | undefined {
    if (!this.enabled) return undefined;
    if (user === '') return { f: 'error', code: 'userEmpty' };
    const u = this.users.get(user);
    if (u === undefined) return { f: 'error', code: 'permissionDenied' };
    if (u.roles.includes(ROOT_ROLE)) return undefined;
    const intervals: Interval[] = [];
    for (const name of u.roles) {
      for (const p of this.roles.get(name)?.permissions ?? []) {
        if (p.permType === 'readwrite' || p.permType === access) {
          intervals.push(intervalOf(p.key, p.rangeEnd));
        }
      }
    }
    return covers(intervals, intervalOf(range.key, range.rangeEnd ?? ''))
      ? undefined
      : { f: 'error', code: 'permissionDenied' };
  }

  /** Applies one auth request as `caller` (checked for admin where etcd checks it). */
  apply(op: AuthOp, caller: string | undefined): AuthResult {
    const refused = caller === undefined ? undefined : this.checkCaller(op, caller);
    if (refused !== undefined) return refused;
    switch (op.f) {
      case 'authEnable':
        return this.authEnable();
      case 'authDisable':
        if (this.enabled) {
          this.enabled = false;
          this.rev++;
        }
        return this.done();
      case 'userAdd':
        if (op.name === '') return err('userEmpty');
        if (this.users.has(op.name)) return err('userAlreadyExist');
        this.rev++;
        this.users.set(op.name, {
          name: op.name,
          password: op.password,
          roles: [],
          since: this.rev,
        });
        return this.done();
      case 'userDelete': {
        if (this.enabled && op.name === ROOT_USER) return err('invalidAuthMgmt');
        if (!this.users.delete(op.name)) return err('userNotFound');
        this.rev++;
        return this.done();
      }
      case 'userChangePassword': {
        const u = this.users.get(op.name);
        if (u === undefined) return err('userNotFound');
        this.rev++;
        this.users.set(op.name, { ...u, password: op.password, since: this.rev });
        return this.done();
      }
      case 'userGrantRole': {
        const u = this.users.get(op.user);
        if (u === undefined) return err('userNotFound');
        if (op.role !== ROOT_ROLE && !this.roles.has(op.role)) return err('roleNotFound');
        if (u.roles.includes(op.role)) return this.done();
        this.rev++;
        this.users.set(op.user, { ...u, roles: [...u.roles, op.role].sort() });
        return this.done();
      }
      case 'userRevokeRole': {
        if (this.enabled && op.name === ROOT_USER && op.role === ROOT_ROLE) {
          return err('invalidAuthMgmt');
        }
        const u = this.users.get(op.name);
        if (u === undefined) return err('userNotFound');
        if (!u.roles.includes(op.role)) return err('roleNotGranted');
        this.rev++;
        this.users.set(op.name, { ...u, roles: u.roles.filter((r) => r !== op.role) });
        return this.done();
      }
      case 'roleAdd':
        if (op.name === '') return err('roleEmpty');
        if (this.roles.has(op.name)) return err('roleAlreadyExist');
        this.rev++;
        this.roles.set(op.name, { name: op.name, permissions: [] });
        return this.done();
      case 'roleDelete': {
        if (this.enabled && op.role === ROOT_ROLE) return err('invalidAuthMgmt');
        if (!this.roles.delete(op.role)) return err('roleNotFound');
        for (const u of [...this.users.values()]) {
          if (u.roles.includes(op.role)) {
            this.users.set(u.name, { ...u, roles: u.roles.filter((r) => r !== op.role) });
          }
        }
        this.rev++;
        return this.done();
      }
      case 'roleGrantPermission': {
        if (!isValidPermissionRange(op.perm.key, op.perm.rangeEnd)) return err('invalidAuthMgmt');
        const role = this.roles.get(op.name);
        if (role === undefined) return err('roleNotFound');
        const perm: AuthPermission = {
          permType: op.perm.permType,
          key: op.perm.key,
          rangeEnd: op.perm.rangeEnd,
        };
        const others = role.permissions.filter((p) => comparePerm(p, perm) !== 0);
        this.rev++;
        this.roles.set(op.name, {
          name: op.name,
          permissions: [...others, perm].sort(comparePerm),
        });
        return this.done();
      }
      case 'roleRevokePermission': {
        const role = this.roles.get(op.role);
        if (role === undefined) return err('roleNotFound');
        const kept = role.permissions.filter(
          (p) => !(p.key === op.key && p.rangeEnd === op.rangeEnd),
        );
        if (kept.length === role.permissions.length) return err('permissionNotGranted');
        this.rev++;
        this.roles.set(op.role, { name: op.role, permissions: kept });
        return this.done();
      }
      case 'authStatus':
        return { f: 'authStatus', enabled: this.enabled, revision: this.rev };
      case 'userGet': {
        const u = this.users.get(op.name);
        if (u === undefined) return err('userNotFound');
        return { f: 'userGet', roles: u.roles, revision: this.rev };
      }
      case 'userList':
        return { f: 'userList', users: [...this.users.keys()].sort(), revision: this.rev };
      case 'roleGet': {
        if (op.role === ROOT_ROLE && !this.roles.has(ROOT_ROLE)) return err('roleNotFound');
        const role = this.roles.get(op.role);
        if (role === undefined) return err('roleNotFound');
        return {
          f: 'roleGet',
          // etcd shows the root role as what it means: read and write on every key.
          permissions:
            op.role === ROOT_ROLE
              ? [{ permType: 'readwrite', key: '', rangeEnd: '\0' }]
              : role.permissions,
          revision: this.rev,
        };
      }
      case 'roleList':
        return { f: 'roleList', roles: [...this.roles.keys()].sort(), revision: this.rev };
      case 'authLookup':
        return {
          f: 'authLookup',
          enabled: this.enabled,
          user: this.users.get(op.name) ?? null,
          revision: this.rev,
        };
    }
  }

  /** etcd's admin checks of auth requests (authApplierV3.Apply, UserGet, RoleGet). */
  private checkCaller(op: AuthOp, caller: string): AuthError | undefined {
    switch (op.f) {
      case 'authStatus':
      case 'authLookup':
        return undefined;
      case 'userGet':
        return caller === op.name && this.users.has(caller) ? undefined : this.checkAdmin(caller);
      case 'roleGet':
        return this.hasRole(caller, op.role) ? undefined : this.checkAdmin(caller);
      default:
        return this.checkAdmin(caller);
    }
  }

  private authEnable(): AuthResult {
    if (this.enabled) return this.done();
    const root = this.users.get(ROOT_USER);
    if (root === undefined) return err('rootUserNotExist');
    if (!root.roles.includes(ROOT_ROLE)) return err('rootRoleNotExist');
    this.enabled = true;
    this.rev++;
    return this.done();
  }

  private done(): AuthResult {
    return { f: 'auth', revision: this.rev };
  }

  image(): AuthImage {
    const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : 1);
    return {
      enabled: this.enabled,
      revision: this.rev,
      users: [...this.users.values()].sort(byName),
      roles: [...this.roles.values()].sort(byName),
    };
  }

  static restore(image: AuthImage): AuthStore {
    const store = new AuthStore();
    store.enabled = image.enabled;
    store.rev = image.revision;
    for (const u of image.users) store.users.set(u.name, u);
    for (const r of image.roles) store.roles.set(r.name, r);
    return store;
  }
}

function err(code: AuthErrorCode): AuthError {
  return { f: 'error', code };
}
