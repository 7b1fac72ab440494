import { QuorateError } from '../../client/errors.ts';
import type { StatusResponse } from '../../client/wire.ts';
import { type CommandModule, EXIT } from '../program.ts';
import { action, type ClientFlags, clientOf, endpointsOf, print, withClientOptions } from './kv.ts';

type Row = { endpoint: string; status: StatusResponse } | { endpoint: string; error: string };

function formatRow(row: Row): string[] {
  if ('error' in row) return [`${row.endpoint}: unreachable (${row.error})`];
  const s = row.status;
  const lines = [
    `${row.endpoint}: node ${s.id} ${s.protocol} ${s.role} term ${s.term} leader ${s.leader || 'none'} ` +
      `commit ${s.commitIndex} applied ${s.appliedIndex} revision ${s.revision}`,
    `  members: ${s.members.map((m) => `${m.id}${m.role === 'learner' ? ' (learner)' : ''}`).join(', ')}`,
  ];
  for (const p of s.progress ?? []) {
    lines.push(
      `  peer ${p.id}: match ${p.match} next ${p.next} ${p.state}${p.recentActive ? '' : ' (inactive)'}`,
    );
  }
  return lines;
}

/** `quorate status`: each endpoint's view (role, term, indexes, and the leader's peer progress). */
export const statusCommand: CommandModule = (program, setExitCode) => {
  withClientOptions(program.command('status').description("show each endpoint's node status"))
    .option('--json', 'print the statuses as a JSON array')
    .action(
      action(setExitCode, async (flags: ClientFlags & { json?: true }) => {
        const client = clientOf(flags);
        const rows: Row[] = await Promise.all(
          endpointsOf(flags).map(async (endpoint): Promise<Row> => {
            try {
              return { endpoint, status: await client.status(endpoint) };
            } catch (err) {
              if (!(err instanceof QuorateError)) throw err;
              return { endpoint, error: err.message };
            }
          }),
        );
        if (flags.json) print(JSON.stringify(rows, null, 2));
        else for (const row of rows) for (const line of formatRow(row)) print(line);
        if (rows.every((r) => 'error' in r)) {
          process.stderr.write('quorate: no endpoint answered\n');
          return EXIT.unknown;
        }
        return EXIT.ok;
      }),
    );
};
