/**
 * Check a client history for linearizability: build one in code, or parse one recorded by
 * Jepsen or by `quorate sim --history`. The checker says which key and read broke it.
 */
import { checkHistory, HistoryBuilder, parseJsonl } from 'quorate/check';

// Client 1 writes x=1 and is done; client 2 then reads 2: no order of these explains that.
const stale = new HistoryBuilder().invoke(1, 'put', 'x', 1).ok(1).invoke(2, 'get', 'x').ok(2, 2);
const verdict = checkHistory(stale.events);

// The same history as JSON Lines, as `quorate sim --history` writes it, reads back the same.
const jsonl = stale.events.map((e) => JSON.stringify(e)).join('\n');
const again = checkHistory(parseJsonl(jsonl));

// Concurrent writes may be ordered either way: this one is linearizable.
const ok = new HistoryBuilder()
  .invoke(1, 'put', 'y', 'a')
  .invoke(2, 'put', 'y', 'b')
  .ok(1)
  .ok(2)
  .invoke(3, 'get', 'y')
  .ok(3, 'a');
console.log(
  JSON.stringify({
    stale: verdict.verdict,
    explanation: verdict.verdict === 'not-linearizable' ? verdict.explanation : '',
    again: again.verdict,
    concurrent: checkHistory(ok.events).verdict,
  }),
);
