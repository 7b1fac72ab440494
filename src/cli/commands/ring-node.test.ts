import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runRingNode } from './ring-node.ts';

describe('quorate node --protocol totem --datagram-crypto', () => {
  it('refuses any mode but the two named ones (no shorthand for turning crypto off)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quorate-ring-node-'));
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, 'a cluster secret of enough bytes\n');
    const flags = {
      id: 1,
      data: join(dir, 'data'),
      clientListen: '127.0.0.1:0',
      peers: '1=127.0.0.1:47999@http://127.0.0.1:47998',
      secretFile,
    };
    for (const mode of ['none', 'off', '', 'insecure', 'AES-256-GCM']) {
      await expect(runRingNode({ ...flags, datagramCrypto: mode })).rejects.toThrow(
        `--datagram-crypto must be aes-256-gcm or insecure-none, got '${mode}'`,
      );
    }
  });
});
