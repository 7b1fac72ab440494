import { describe, expect, it } from 'vitest';
import { findProtocol } from '../../sim/protocols.ts';
import { runSimulation } from '../../sim/run.ts';
import { TraceModel } from './trace-model.ts';

function traceOf(protocol: string, seed: number): string {
  const plugin = findProtocol(protocol);
  if (plugin === undefined) throw new Error(`no ${protocol} plugin`);
  const lines: string[] = [];
  runSimulation(plugin, { seed, ops: 12, faults: ['crash'], trace: (l) => lines.push(l) });
  return `${lines.join('\n')}\n`;
}

describe('TraceModel', () => {
  it('rebuilds a Raft run: a leader appears and applied entries show on the nodes', () => {
    const model = new TraceModel(traceOf('raft', 2), 64);
    const end = model.at(model.length);
    expect(model.protocol).toBe('raft');
    expect(end.nodes.some((n) => n.view.role === 'leader')).toBe(true);
    expect(end.nodes.some((n) => n.view.applied > 0 && n.view.log.length > 0)).toBe(true);
    expect(end.caption).toMatch(/^end: /);
  });

  it('gives the same state stepping backward as replaying forward from the start', () => {
    const text = traceOf('primary-backup', 5);
    const stepped = new TraceModel(text, 16);
    const straight = new TraceModel(text, 1_000_000);
    for (const at of [0, 1, 15, 16, 17, 100, stepped.length - 1, stepped.length]) {
      expect(JSON.stringify(stepped.at(at))).toBe(JSON.stringify(straight.at(at)));
    }
  });

  it('keeps messages in flight between their send and delivery records', () => {
    const model = new TraceModel(traceOf('primary-backup', 1), 32);
    const sendAt = model.records.findIndex((r) => r.type === 'send');
    const id = Number(model.records[sendAt]!.id);
    const doneAt = model.records.findIndex(
      (r) => (r.type === 'deliver' || r.type === 'drop') && Number(r.id) === id,
    );
    expect(model.at(sendAt).flights.some((f) => f.id === id)).toBe(false);
    expect(model.at(sendAt + 1).flights.some((f) => f.id === id)).toBe(true);
    expect(model.at(doneAt + 1).flights.some((f) => f.id === id)).toBe(false);
  });

  it('rejects text that is not a trace, naming the line', () => {
    expect(() => new TraceModel('{"t":0,"type":"send"}\n')).toThrow(/start/);
    expect(() => new TraceModel('{"t":0,"type":"start","nodes":[1]}\nnot json\n')).toThrow(
      /line 2/,
    );
  });
});
