/**
 * One `POST /v1/messages/stream` (server/routes/message-stream.ts) over node:https with a client
 * certificate, for bench/messages.ts's `BENCH_STREAM` load: it keeps `window` pre-built lines in
 * flight and writes the next ones as answers free their slots — the answers that arrive in one
 * read free their slots for one write. A line's latency runs from the write that carried it to its
 * answer.
 *
 * node:https does the chunked framing both ways. Its cost is per read and write here, not per
 * message as it was per request: a client on a raw TLS socket writing the chunks itself (as
 * lib/raw-client.ts writes requests) measured no cheaper (19-20 against 17-19 µs of the shared
 * cores per message at 3-4 in flight), so the framing stays node's.
 */
import https from 'node:https';

/** What each answer line told. */
export interface StreamAnswer {
  ok: boolean;
  /** The refusal's `status code`, when not ok. */
  refusal?: string;
  ms: number;
}

/** The end of a stream: its `end` line, or why there was none. */
export interface StreamEnd {
  end?: { lines: number; accepted: number; refused: number; error?: { code: string; message: string } };
  failure?: string;
  /** The client ran out of lines before `until()` turned false. */
  exhausted: boolean;
}

/**
 * Sends `lines` (each a message's JSON and its newline) on one stream while `until()` holds,
 * `window` at a time, calling `onAnswer` per answer line; resolves with the stream's end once the
 * server ended its answer.
 */
export function runStream(
  url: URL,
  o: { ca: string; cert: string; key: string; token: string },
  lines: readonly Buffer[],
  window: number,
  until: () => boolean,
  onAnswer: (a: StreamAnswer) => void,
): Promise<StreamEnd> {
  return new Promise((resolve) => {
    const sentAt: number[] = [];
    let next = 0;
    let answered = 0;
    let ending = false;
    let exhausted = false;
    let end: StreamEnd['end'];
    let failure: string | undefined;
    let settled = false;
    const settle = (why?: string): void => {
      if (settled) return;
      settled = true;
      resolve({ ...(end ? { end } : {}), ...(failure || why ? { failure: failure ?? why } : {}), exhausted });
    };
    let text = '';
    const req = https.request({
      host: url.hostname,
      port: url.port,
      path: '/v1/messages/stream',
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${o.token}` },
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      agent: false,
      minVersion: 'TLSv1.3',
    });
    /** Fills the window: the lines it has room for, in one write; the end of the body once done. */
    const fill = (): void => {
      if (ending) return;
      if (!until() || next >= lines.length) {
        exhausted = next >= lines.length && until();
        ending = true;
        req.end();
        return;
      }
      const take = Math.min(window - (next - answered), lines.length - next);
      if (take <= 0) return;
      const now = performance.now();
      for (let i = 0; i < take; i++) sentAt.push(now);
      req.write(take === 1 ? lines[next]! : Buffer.concat(lines.slice(next, next + take)));
      next += take;
    };
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        failure = `HTTP ${res.statusCode}`;
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        const now = performance.now();
        let from = 0;
        for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
          const a = JSON.parse(text.slice(from, nl)) as { n?: number; receipt?: unknown; error?: { code: string; status: number }; end?: StreamEnd['end'] };
          from = nl + 1;
          if (a.end) {
            end = a.end;
            continue;
          }
          answered++;
          const ms = now - sentAt[a.n!]!;
          onAnswer(a.receipt ? { ok: true, ms } : { ok: false, refusal: `${a.error?.status} ${a.error?.code}`, ms });
        }
        text = text.slice(from);
        fill();
      });
      res.on('end', () => settle(end ? undefined : 'the answer ended without the end line'));
      res.on('error', (e) => settle(e.message));
    });
    req.on('error', (e) => settle(e.message));
    req.on('close', () => settle(end ? undefined : 'the connection closed without the end line'));
    req.flushHeaders();
    fill();
  });
}
