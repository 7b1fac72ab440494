import type { SimOptions } from '../options.ts';

/**
 * The options of a printed replay command (`npx quorate sim p --nodes 5 --seed 7 ...`), so
 * a broken-variant test can run exactly what a failure told the user to run.
 */
export function parseReplay(replay: string): Partial<SimOptions> {
  const flag = (name: string): string => {
    const m = new RegExp(`--${name} (\\S+)`).exec(replay);
    if (m?.[1] === undefined) throw new Error(`replay lacks --${name}: ${replay}`);
    return m[1];
  };
  const faults = flag('faults');
  return {
    nodes: Number(flag('nodes')),
    seed: Number(flag('seed')),
    ops: Number(flag('ops')),
    clients: Number(flag('clients')),
    faults: faults === 'none' ? [] : faults.split(','),
  };
}
