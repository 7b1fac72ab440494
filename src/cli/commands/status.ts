import type { QuorateClient } from '../../client/client.ts';
import { QuorateError } from '../../client/errors.ts';
import type { StatusResponse } from '../../client/wire.ts';
import { type CommandModule, EXIT } from '../program.ts';
import { commandSummaries } from '../summaries.ts';
import {
  action,
  type ClientFlags,
  clientOf,
  endpointsOf,
  printAnswer,
  withClientOptions,
} from './client-options.ts';

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

const statusHeaders = [
  'endpoint',
  'id',
  'protocol',
  'role',
  'term',
  'leader',
  'commit',
  'applied',
  'revision',
  'members',
  'error',
] as const;

/** A member's line of `status -w table`, as `etcdctl endpoint status -w table` draws one. */
function tableRow(row: Row): (string | number)[] {
  if ('error' in row) return [row.endpoint, '', '', '', '', '', '', '', '', '', row.error];
  const s = row.status;
  const members = s.members.map((m) => `${m.id}${m.role === 'learner' ? ' (learner)' : ''}`);
  return [
    row.endpoint,
    s.id,
    s.protocol,
    s.role,
    s.term,
    s.leader || 'none',
    s.commitIndex,
    s.appliedIndex,
    s.revision,
    members.join(', '),
    '',
  ];
}

async function rowOf(client: QuorateClient, endpoint: string): Promise<Row> {
  try {
    return { endpoint, status: await client.status(endpoint) };
  } catch (err) {
    if (!(err instanceof QuorateError)) throw err;
    return { endpoint, error: err.message };
  }
}

/**
 * Every member's row, not only the given endpoints': the members any answering endpoint
 * lists are asked too (a member down shows as unreachable), unless --only-endpoints.
 */
async function rowsOf(client: QuorateClient, endpoints: readonly string[], only: boolean) {
  const rows = await Promise.all(endpoints.map((e) => rowOf(client, e)));
  if (only) return rows;
  const asked = new Set(endpoints.map((e) => new URL(e).origin));
  const more = new Set<string>();
  for (const row of rows) {
    if ('error' in row) continue;
    for (const m of row.status.members) {
      const origin = URL.canParse(m.clientUrl) ? new URL(m.clientUrl).origin : undefined;
      if (origin !== undefined && !asked.has(origin)) more.add(origin);
    }
  }
  return [...rows, ...(await Promise.all([...more].map((e) => rowOf(client, e))))];
}

/** `quorate status`: every member's view (role, term, indexes, and the leader's peer progress). */
export const statusCommand: CommandModule = (program, setExitCode) => {
  withClientOptions(program.command('status').description(commandSummaries.status.description))
    .option('--only-endpoints', 'ask only the given endpoints, not every member they list')
    .action(
      action(setExitCode, async (flags: ClientFlags & { onlyEndpoints?: true }) => {
        const client = clientOf(flags);
        const rows = await rowsOf(client, endpointsOf(flags), flags.onlyEndpoints === true);
        printAnswer(flags, rows, {
          simple: (a) => a.flatMap(formatRow),
          table: (a) => ({ headers: statusHeaders, rows: a.map(tableRow) }),
        });
        if (rows.every((r) => 'error' in r)) {
          process.stderr.write('quorate: no endpoint answered\n');
          return EXIT.unknown;
        }
        return EXIT.ok;
      }),
    );
};
