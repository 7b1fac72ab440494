import { describe, expect, it } from 'vitest';
import { baseProgram, commandModules, programFor } from './main.ts';
import { commandSummaries } from './summaries.ts';

/** The program with every subcommand's real module registered, as before the summaries. */
async function fullProgram() {
  const program = baseProgram();
  for (const load of Object.values(commandModules)) (await load())(program, () => {});
  return program;
}

describe('top-level help from the summaries', () => {
  it('is exactly the help the real command modules give', async () => {
    const full = await fullProgram();
    for (const argv of [['--help'], [], ['help'], ['-V'], ['no-such-command']]) {
      const summarized = await programFor(['node', 'quorate', ...argv], () => {});
      expect(summarized.helpInformation()).toBe(full.helpInformation());
    }
  });

  it('lists every command module, in the same order', async () => {
    const full = await fullProgram();
    expect(full.commands.map((c) => c.name())).toEqual(Object.keys(commandSummaries));
  });

  it('loads the one command a run or `help <command>` names', async () => {
    for (const argv of [
      ['kv', 'get', 'k'],
      ['help', 'kv'],
    ]) {
      const program = await programFor(['node', 'quorate', ...argv], () => {});
      expect(program.commands.map((c) => c.name())).toEqual(['kv']);
      expect(program.commands[0]?.commands.map((c) => c.name())).toContain('get');
    }
  });
});
