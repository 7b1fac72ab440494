import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Who may drive the dashboard. Any web page the user has open can send requests to a port
 * on 127.0.0.1 (a form or a `text/plain` fetch needs no CORS preflight), and a DNS name
 * rebound to 127.0.0.1 makes such a page look same-origin. So:
 * - every request must name this dashboard in Host (a rebound name does not);
 * - a state-changing request must come from this dashboard's own origin when a browser says
 *   where it comes from (Origin, Sec-Fetch-Site), and must carry the per-run token, which only
 *   this dashboard's page has: the server writes it into the index.html it serves. Sending
 *   the token header from another origin needs a CORS preflight, which is never granted.
 */
export const TOKEN_HEADER = 'x-quorate-token';

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly why: string };

export class DashboardGuard {
  readonly token = randomBytes(32).toString('hex');
  private readonly hosts: ReadonlySet<string>;
  private readonly origins: ReadonlySet<string>;

  /** `port` is the one the dashboard listens on; `host` the address it is bound to. */
  constructor(host: string, port: number) {
    const names = new Set([
      '127.0.0.1',
      'localhost',
      '[::1]',
      host.includes(':') ? `[${host}]` : host,
    ]);
    this.hosts = new Set([...names].map((name) => `${name}:${port}`));
    this.origins = new Set([...this.hosts].map((h) => `http://${h}`));
  }

  /** Any request: is it addressed to this dashboard by one of its own names? */
  checkHost(req: IncomingMessage): Verdict {
    const host = req.headers.host ?? '';
    if (this.hosts.has(host.toLowerCase())) return { ok: true };
    return { ok: false, why: `Host '${host}' is not this dashboard (a rebound DNS name?)` };
  }

  /** A state-changing request: same origin when a browser tells, and the run's token. */
  checkChange(req: IncomingMessage): Verdict {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') {
      return { ok: false, why: `a ${site} request (Sec-Fetch-Site)` };
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !this.origins.has(origin.toLowerCase())) {
      return { ok: false, why: `a request from ${origin}, not from this dashboard` };
    }
    const sent = req.headers[TOKEN_HEADER];
    if (typeof sent !== 'string' || !this.tokenMatches(sent)) {
      return { ok: false, why: `no valid ${TOKEN_HEADER} header (the dashboard page sends it)` };
    }
    return { ok: true };
  }

  /** index.html with the token in a meta tag the page reads. */
  pageWithToken(html: Buffer): Buffer {
    const text = html.toString('utf8');
    const meta = `<meta name="quorate-token" content="${this.token}">`;
    const at = text.indexOf('</head>');
    return Buffer.from(at < 0 ? `${meta}${text}` : `${text.slice(0, at)}${meta}${text.slice(at)}`);
  }

  private tokenMatches(sent: string): boolean {
    const a = Buffer.from(sent);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}
