/**
 * Just enough EDN to read Jepsen history lines: maps, vectors, lists, strings, integers and
 * floats, keywords, nil and booleans. Tagged literals, sets, symbols and characters are not
 * needed by histories and are rejected.
 */
export class Keyword {
  constructor(readonly name: string) {}
}

export type Edn = null | boolean | number | string | Keyword | Edn[] | EdnMap;
export type EdnMap = Map<string, Edn>;

/** Thrown with a message naming the offending column (1-based). */
export class EdnError extends Error {
  override readonly name = 'EdnError';
}

const delimiters = new Set([' ', '\t', '\r', '\n', ',', '}', ']', ')', '{', '[', '(', '"']);

class Reader {
  private at = 0;

  constructor(private readonly text: string) {}

  fail(why: string): never {
    throw new EdnError(`${why} at column ${this.at + 1}`);
  }

  skipSpace(): void {
    while (this.at < this.text.length && /[\s,]/.test(this.text[this.at]!)) this.at++;
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.at >= this.text.length;
  }

  read(): Edn {
    this.skipSpace();
    const c = this.text[this.at];
    if (c === undefined) return this.fail('unexpected end of input');
    if (c === '{') return this.readMap();
    if (c === '[' || c === '(') return this.readSequence(c === '[' ? ']' : ')');
    if (c === '"') return this.readString();
    if (c === ':') return new Keyword(this.readToken().slice(1));
    const token = this.readToken();
    if (token === 'nil') return null;
    if (token === 'true' || token === 'false') return token === 'true';
    if (/^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(token)) return Number(token);
    return this.fail(`unsupported EDN token '${token}'`);
  }

  private readToken(): string {
    const start = this.at;
    while (this.at < this.text.length && !delimiters.has(this.text[this.at]!)) this.at++;
    if (this.at === start) this.fail(`unexpected '${this.text[this.at]}'`);
    return this.text.slice(start, this.at);
  }

  private readSequence(close: string): Edn[] {
    this.at++;
    const items: Edn[] = [];
    for (this.skipSpace(); this.text[this.at] !== close; this.skipSpace()) {
      if (this.at >= this.text.length) this.fail(`missing '${close}'`);
      items.push(this.read());
    }
    this.at++;
    return items;
  }

  private readMap(): EdnMap {
    this.at++;
    const map: EdnMap = new Map();
    for (this.skipSpace(); this.text[this.at] !== '}'; this.skipSpace()) {
      if (this.at >= this.text.length) this.fail(`missing '}'`);
      const key = this.read();
      if (!(key instanceof Keyword)) this.fail('map keys must be keywords');
      if (this.atEnd() || this.text[this.at] === '}') this.fail(`:${key.name} has no value`);
      map.set(key.name, this.read());
    }
    this.at++;
    return map;
  }

  private readString(): string {
    let out = '';
    for (this.at++; this.text[this.at] !== '"'; this.at++) {
      const c = this.text[this.at];
      if (c === undefined) this.fail('unterminated string');
      if (c !== '\\') {
        out += c;
        continue;
      }
      this.at++;
      const escaped = this.text[this.at];
      const known: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };
      const replacement = escaped === undefined ? undefined : known[escaped];
      if (replacement === undefined) this.fail(`unsupported escape '\\${escaped ?? ''}'`);
      out += replacement;
    }
    this.at++;
    return out;
  }
}

/** Reads one EDN value that must fill `text` (surrounding whitespace and commas allowed). */
export function readEdn(text: string): Edn {
  const reader = new Reader(text);
  const value = reader.read();
  if (!reader.atEnd()) reader.fail('trailing text after the value');
  return value;
}
