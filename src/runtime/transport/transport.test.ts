import { MemoryNetwork, MemoryTransport } from './memory-transport.ts';
import { TcpTransport } from './tcp-transport.ts';
import type { TestMsg } from './transport.cases.ts';
import { transportConformance } from './transport.cases.ts';

export const SECRET = 'correct horse battery staple';

transportConformance('MemoryTransport', () => {
  const network = new MemoryNetwork();
  return { make: (id, limits) => new MemoryTransport<TestMsg>(id, network, limits ?? {}) };
});

transportConformance('TcpTransport', () => ({
  make: (id, limits) =>
    new TcpTransport<TestMsg>({
      id,
      secret: SECRET,
      listen: { port: limits?.port ?? 0 },
      ...(limits?.queueMessagesMax !== undefined && { queueMessagesMax: limits.queueMessagesMax }),
      ...(limits?.frameBytesMax !== undefined && { frameBytesMax: limits.frameBytesMax }),
      reconnectBaseMs: 10,
      reconnectMaxMs: 100,
      log: () => {},
    }),
}));
