/**
 * `-w table`: rows in a box, as etcdctl draws them, so output a user already reads from
 * etcdctl reads the same here. Cells show control characters escaped (a value with a newline
 * must not break the box); `-w json` is the exact form.
 */

const controlCharacters = /\p{Cc}/gu;

/** A cell as it is drawn: control characters escaped as in a JSON string. */
export function cellText(value: string | number | boolean): string {
  return String(value).replace(controlCharacters, (c) => JSON.stringify(c).slice(1, -1));
}

/** Terminal columns a cell takes: one per code point (no East Asian width table here). */
function widthOf(text: string): number {
  let width = 0;
  for (const _ of text) width++;
  return width;
}

/** The table's lines: a rule, the headers, a rule, one line per row, a rule. */
export function tableLines(
  headers: readonly string[],
  rows: readonly (readonly (string | number | boolean)[])[],
): string[] {
  for (const row of rows) {
    if (row.length !== headers.length) {
      throw new Error(`a table row has ${row.length} cells for ${headers.length} headers`);
    }
  }
  const cells = rows.map((row) => row.map(cellText));
  const widths = headers.map((h, i) =>
    Math.max(widthOf(h), ...cells.map((r) => widthOf(r[i] ?? ''))),
  );
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (texts: readonly string[]) =>
    `|${texts.map((t, i) => ` ${t}${' '.repeat((widths[i] ?? 0) - widthOf(t))} `).join('|')}|`;
  return [rule, line(headers.map((h) => h.toUpperCase())), rule, ...cells.map(line), rule];
}
