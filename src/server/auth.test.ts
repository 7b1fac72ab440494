import { describe, expect, it } from 'vitest';
import { AuthGate, AuthRefusedError } from './auth.ts';
import { MemoryEngine } from './testing/memory-engine.ts';

const SECRET = 'a cluster secret of some length';

async function cluster(now: () => number) {
  const engine = new MemoryEngine({ id: 1 });
  const gate = new AuthGate(engine, { secret: SECRET, scryptCost: 1024, tokenTtlMs: 1000, now });
  const hash = await gate.hashPassword('pw');
  for (const op of [
    { f: 'userAdd', name: 'root', password: hash },
    { f: 'userGrantRole', user: 'root', role: 'root' },
    { f: 'authEnable' },
  ] as const) {
    await engine.write({ session: 0, seq: 0, op });
  }
  return { engine, gate };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AuthRefusedError) return err.code;
    throw err;
  }
  return 'accepted';
}

describe('auth tokens', () => {
  it('are verified by any gate under the same secret, until they expire', async () => {
    let clock = 1_000_000;
    const { engine, gate } = await cluster(() => clock);
    const { token } = await gate.authenticate('root', 'pw');
    const other = new AuthGate(engine, { secret: SECRET, now: () => clock });
    expect(await other.identify(token)).toEqual({ user: 'root' });
    const stranger = new AuthGate(engine, {
      secret: 'another secret, also long',
      now: () => clock,
    });
    expect(await refusal(stranger.identify(token))).toBe('invalidToken');
    // A forged payload under the right mac length fails the mac.
    const [payload, mac] = token.split('.');
    const forged = `${Buffer.from(JSON.stringify({ u: 'root', r: 99, e: clock * 2 })).toString('base64url')}.${mac}`;
    expect(payload).not.toBe(forged.split('.')[0]);
    expect(await refusal(gate.identify(forged))).toBe('invalidToken');
    clock += 1001;
    expect(await refusal(gate.identify(token))).toBe('invalidToken');
  });

  it('refuses a wrong password and a user without one, and hashes with a fresh salt', async () => {
    const { gate } = await cluster(() => 0);
    expect(await refusal(gate.authenticate('root', 'nope'))).toBe('authFailed');
    expect(await refusal(gate.authenticate('nobody', 'pw'))).toBe('authFailed');
    const a = await gate.hashPassword('same');
    const b = await gate.hashPassword('same');
    expect(a.salt).not.toBe(b.salt);
    expect(a.hash).not.toBe(b.hash);
    expect(JSON.stringify(a)).not.toContain('same');
  });

  it('void a token once its user is deleted and added again', async () => {
    const { engine, gate } = await cluster(() => 0);
    await engine.write({
      session: 0,
      seq: 0,
      op: { f: 'userAdd', name: 'bob', password: await gate.hashPassword('b') },
    });
    const { token } = await gate.authenticate('bob', 'b');
    expect(await gate.identify(token)).toEqual({ user: 'bob' });
    await engine.write({ session: 0, seq: 0, op: { f: 'userDelete', name: 'bob' } });
    expect(await refusal(gate.identify(token))).toBe('invalidToken');
    await engine.write({ session: 0, seq: 0, op: { f: 'userAdd', name: 'bob', password: null } });
    expect(await refusal(gate.identify(token))).toBe('invalidToken');
  });
});
