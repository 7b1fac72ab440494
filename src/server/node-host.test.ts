import { describe, expect, it } from 'vitest';
import { type Core, type CoreTypes, OutputBuffer, type Ready, type Reply } from '../kernel/core.ts';
import type { ClientId, NodeId } from '../kernel/ids.ts';
import { MemoryNetwork, MemoryTransport } from '../runtime/transport/memory-transport.ts';
import { NodeHost } from './node-host.ts';

interface EchoTypes extends CoreTypes {
  readonly msg: never;
  readonly persist: never;
  readonly deliver: never;
  readonly request: string;
  readonly reply: string;
  readonly event: never;
}

/** Answers every request at once, with no timer of its own (deadline: never). */
class EchoCore implements Core<EchoTypes> {
  readonly id: NodeId = 1;
  private readonly out = new OutputBuffer<EchoTypes>();
  tick(): void {}
  receive(): void {}
  request(_now: number, client: ClientId, req: string): void {
    this.out.reply(client, `echo ${req}`);
  }
  deadline(): number {
    return Number.POSITIVE_INFINITY;
  }
  ready(): Ready<EchoTypes> | undefined {
    return this.out.ready();
  }
  advance(): void {
    this.out.advance();
  }
}

describe('the node host', () => {
  it('carries out an input that arrives as a pump ends, without waiting for a timer', async () => {
    const core = new EchoCore();
    const answered: Reply<string>[] = [];
    const host = new NodeHost<EchoTypes>({
      core,
      transport: new MemoryTransport<never>(1, new MemoryNetwork()),
      tickOnStart: false,
      service: {
        persist: () => Promise.resolve(),
        event: () => {},
        replies: (replies) => answered.push(...replies),
      },
    });
    await host.start();
    // Two inputs in one turn, as two frames of one socket read are: the first one's pump
    // takes its last batch at once but ends a microtask later, when the second is in.
    host.input((now) => core.request(now, 1, 'first'));
    host.input((now) => core.request(now, 2, 'second'));
    // The core sets no timer, so only the host's own wake-up can carry the second out.
    await new Promise((wake) => setTimeout(wake, 20));
    expect(answered.map((r) => r.reply)).toEqual(['echo first', 'echo second']);
    await host.stop();
  });
});
