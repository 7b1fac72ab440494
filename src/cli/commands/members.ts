import { type CommandModule, EXIT, UsageError } from '../program.ts';
import { commandSummaries } from '../summaries.ts';

/**
 * `quorate members` (a gossip agent's view of the cluster) and the small HTTP helper the
 * gossip client commands share. The endpoint is an agent's HTTP API; the default is the
 * first agent of `quorate up --protocol gossip`.
 */
export const GOSSIP_ENDPOINT_DEFAULT = 'http://127.0.0.1:2379';

export interface GossipClientFlags {
  readonly endpoint?: string;
  readonly json?: true;
}

export function endpointOf(flags: GossipClientFlags): string {
  const e = flags.endpoint ?? process.env.QUORATE_GOSSIP_ENDPOINT ?? GOSSIP_ENDPOINT_DEFAULT;
  if (!URL.canParse(e)) throw new UsageError(`--endpoint '${e}' is not a URL`);
  return e.replace(/\/$/, '');
}

/** A JSON call; a non-2xx answer throws with the API's message. */
export async function callAgent<T>(
  endpoint: string,
  path: string,
  init?: { readonly method: 'POST'; readonly body: unknown },
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${endpoint}${path}`, {
      method: init?.method ?? 'GET',
      ...(init === undefined
        ? {}
        : { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new AgentError(`${endpoint}: unreachable (${(err as Error).message})`);
  }
  const body = (await res.json().catch(() => ({}))) as T & { error?: { message?: string } };
  if (!res.ok)
    throw new AgentError(`${endpoint}: ${res.status} ${body.error?.message ?? ''}`.trim());
  return body;
}

export class AgentError extends Error {
  override readonly name = 'AgentError';
}

interface MembersBody {
  readonly id: number;
  readonly members: readonly {
    readonly id: number;
    readonly address?: string;
    readonly status: string;
    readonly incarnation: number;
    readonly tags: Readonly<Record<string, string>>;
  }[];
}

export const membersCommand: CommandModule = (program, setExitCode) => {
  program
    .command('members')
    .description(commandSummaries.members.description)
    .option(
      '--endpoint <url>',
      `agent HTTP API (default $QUORATE_GOSSIP_ENDPOINT or ${GOSSIP_ENDPOINT_DEFAULT})`,
    )
    .option('--json', 'print the JSON answer')
    .action(async (flags: GossipClientFlags) => {
      const endpoint = endpointOf(flags);
      try {
        const body = await callAgent<MembersBody>(endpoint, '/v1/members');
        if (flags.json === true) process.stdout.write(`${JSON.stringify(body)}\n`);
        else {
          const rows = [...body.members].sort((a, b) => a.id - b.id);
          for (const m of rows) {
            const tags = Object.entries(m.tags)
              .map(([k, v]) => `${k}=${v}`)
              .join(',');
            const self = m.id === body.id ? ' (self)' : '';
            process.stdout.write(
              `${m.id}${self}\t${m.address ?? '?'}\t${m.status}\tinc ${m.incarnation}${tags === '' ? '' : `\t${tags}`}\n`,
            );
          }
        }
        setExitCode(EXIT.ok);
      } catch (err) {
        if (!(err instanceof AgentError)) throw err;
        process.stderr.write(`quorate members: ${err.message}\n`);
        setExitCode(EXIT.unknown);
      }
    });
};
