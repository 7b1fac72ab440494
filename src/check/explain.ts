import { unreachable } from '../kernel/index.ts';
import { ABSENT, type CompiledKey } from './model.ts';
import { type Operation, show } from './operations.ts';
import type { Frontier } from './search.ts';

/** How many operations of the longest legal order an explanation quotes. */
const quotedOrderMax = 4;

/** An operation in prose: who did what, with which result, over which interval. */
export function describeOperation(op: Operation): string {
  const interval = Number.isFinite(op.returnTime)
    ? `t=${op.callTime}..${op.returnTime}`
    : `invoked t=${op.callTime}, outcome unknown`;
  return `process ${op.process} ${action(op)} (${interval})`;
}

function action(op: Operation): string {
  switch (op.f) {
    case 'get':
      return `get read ${readable(op.output)}`;
    case 'put':
      return `put ${show(op.input)}`;
    case 'delete':
      return 'delete';
    case 'append':
      return `append ${show(op.input)}`;
    case 'cas': {
      const [expected, next] = Array.isArray(op.input) ? op.input : [null, null];
      const swap = `cas ${readable(expected ?? null)} -> ${readable(next ?? null)}`;
      if (op.outcome === 'ok') return `${swap} succeeded`;
      return op.outcome === 'fail'
        ? `${swap} failed (value was not ${readable(expected ?? null)})`
        : swap;
    }
    default:
      return unreachable(op.f, 'kv function');
  }
}

function readable(value: unknown): string {
  return value === null ? 'absent' : show(value);
}

/**
 * A human explanation of a violation, in the spirit of porcupine's partial linearizations:
 * the first return no legal order gets past (so the history up to there is the smallest
 * non-linearizable prefix), the end of a longest legal order, and the register values with
 * which legal orders reached that point.
 */
export function explainViolation(model: CompiledKey, frontier: Frontier): string {
  const blocked = model.ops[frontier.blocked]!;
  const lines: string[] = [
    `no order of the operations that respects real time and the register's rules gets past ` +
      `the return of ${describeOperation(blocked)}; the history is not linearizable by ` +
      `t=${blocked.returnTime}.`,
  ];
  const order = frontier.order;
  if (order.length === 0) {
    lines.push(`No operation can even be placed first: the register starts ${start(model)}.`);
  } else {
    const quoted = order.slice(-quotedOrderMax).map((i) => describeOperation(model.ops[i]!));
    const lead = order.length > quotedOrderMax ? `, ending with` : `:`;
    lines.push(
      `A longest legal order places ${order.length} operation(s)${lead} ${quoted.join('; ')}.`,
    );
  }
  const values = frontier.states.map((s) => readable(s === ABSENT ? null : model.table.value(s)));
  lines.push(
    `Legal orders reach that point with the register at ${values.join(' or ')}, and none can ` +
      `then place ${describeOperation(blocked)} before it returned.`,
  );
  return lines.join(' ');
}

function start(model: CompiledKey): string {
  return model.initial === ABSENT ? 'absent' : `at ${show(model.table.value(model.initial))}`;
}
