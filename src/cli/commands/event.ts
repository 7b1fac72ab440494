import { type CommandModule, EXIT, intOption } from '../program.ts';
import { commandSummaries } from '../summaries.ts';
import {
  AgentError,
  callAgent,
  endpointOf,
  GOSSIP_ENDPOINT_DEFAULT,
  type GossipClientFlags,
} from './members.ts';

/**
 * `quorate event send <name> [payload]` publishes a user event through a gossip agent;
 * `quorate event watch` prints what an agent receives (server-sent events), one JSON
 * object a line, gaps included: `{"type":"gap",...}` for events lost to retention at
 * their origin, `{"type":"feed-gap",...}` for ones this agent no longer keeps.
 */
interface WatchFlags extends GossipClientFlags {
  readonly from?: number;
  readonly count?: number;
  readonly timeoutMs?: number;
}

async function watch(endpoint: string, flags: WatchFlags): Promise<number> {
  const from = flags.from === undefined ? '' : `?from=${flags.from}`;
  const abort = new AbortController();
  const timer =
    flags.timeoutMs === undefined ? undefined : setTimeout(() => abort.abort(), flags.timeoutMs);
  let seen = 0;
  try {
    const res = await fetch(`${endpoint}/v1/events/stream${from}`, { signal: abort.signal });
    if (!res.ok || res.body === null) throw new AgentError(`${endpoint}: ${res.status}`);
    const decoder = new TextDecoder();
    let buffered = '';
    const reader = res.body.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      buffered += decoder.decode(r.value, { stream: true });
      for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data === undefined) continue;
        process.stdout.write(`${data.slice(6)}\n`);
        seen++;
        if (flags.count !== undefined && seen >= flags.count) {
          abort.abort();
          return EXIT.ok;
        }
      }
    }
    return EXIT.ok;
  } catch (err) {
    if (abort.signal.aborted) return flags.count === undefined ? EXIT.ok : EXIT.unknown;
    throw new AgentError(`${endpoint}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

export const eventCommand: CommandModule = (program, setExitCode) => {
  const event = program.command('event').description(commandSummaries.event.description);
  const endpointHelp = `agent HTTP API (default $QUORATE_GOSSIP_ENDPOINT or ${GOSSIP_ENDPOINT_DEFAULT})`;
  event
    .command('send <name> [payload]')
    .description('publish a user event (name plus payload at most 1 KiB)')
    .option('--endpoint <url>', endpointHelp)
    .action(async (name: string, payload: string | undefined, flags: GossipClientFlags) => {
      try {
        const r = await callAgent<{ origin: number; seq: number }>(
          endpointOf(flags),
          '/v1/events',
          {
            method: 'POST',
            body: { name, payload: payload ?? '' },
          },
        );
        process.stdout.write(`published ${r.origin}:${r.seq}\n`);
        setExitCode(EXIT.ok);
      } catch (err) {
        if (!(err instanceof AgentError)) throw err;
        process.stderr.write(`quorate event send: ${err.message}\n`);
        setExitCode(EXIT.unknown);
      }
    });
  event
    .command('watch')
    .description('print received events as JSON lines, gaps included')
    .option('--endpoint <url>', endpointHelp)
    .option(
      '--from <n>',
      'feed number to start at (default: what arrives from now)',
      intOption('--from', 1),
    )
    .option('--count <n>', 'stop after n items', intOption('--count', 1))
    .option('--timeout-ms <ms>', 'stop after this long', intOption('--timeout-ms', 1))
    .action(async (flags: WatchFlags) => {
      try {
        setExitCode(await watch(endpointOf(flags), flags));
      } catch (err) {
        if (!(err instanceof AgentError)) throw err;
        process.stderr.write(`quorate event watch: ${err.message}\n`);
        setExitCode(EXIT.unknown);
      }
    });
};
