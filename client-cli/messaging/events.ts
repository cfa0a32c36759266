/**
 * The live event stream (`GET /v1/events`, server/API.md "Live events"): a Server-Sent Events
 * parser (WHATWG HTML §9.2 event stream format) and a client that reconnects after a dropped
 * connection with `Last-Event-ID`, so nothing is lost and nothing is shown twice (the server
 * replays every message after that id, then streams live). A stream on which nothing arrives for
 * a while (no event, no keep-alive comment) is taken as dead and reconnected the same way: a peer
 * that lost power or a cut cable closes nothing, and this client never writes on the stream, so
 * without that limit TCP would never tell.
 */
import { StringDecoder } from 'node:string_decoder';
import { ServerError } from '../errors.js';
import { StreamFailedError } from './errors.js';
import { open, type Endpoint } from './transport.js';

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * The most one event (its unfinished line and the data lines before it) may hold, in characters.
 * The largest message event carries a 1 MiB body as base64; a stream that goes on without a line
 * end or a blank line is not an event stream, and holding it all would only end in running out
 * of memory.
 */
export const MAX_EVENT_CHARS = 64 * 1024 * 1024;

/** The stream sent more for one event than any event can hold: reconnecting would get it again. */
export class EventTooLargeError extends StreamFailedError {
  constructor(max: number) {
    super(`the server sent an event of more than ${max} characters`);
  }
}

/** Incremental parser: feed text as it arrives, get the complete events. */
export class SseParser {
  private buffer = '';
  /** How much of `buffer` is known to hold no line end: each push scans only what is new. */
  private scanned = 0;
  private event = '';
  private data: string[] = [];
  private dataChars = 0;
  private id: string | undefined;

  constructor(private readonly maxEventChars = MAX_EVENT_CHARS) {}

  /** @throws EventTooLargeError when one event grows past the limit. */
  push(text: string): SseEvent[] {
    this.buffer += text;
    const out: SseEvent[] = [];
    for (;;) {
      const nl = lineEnd(this.buffer, this.scanned);
      if (nl < 0) {
        this.scanned = this.buffer.length;
        if (this.buffer.length + this.dataChars > this.maxEventChars) throw new EventTooLargeError(this.maxEventChars);
        break;
      }
      // A CR at the very end may be the first half of CRLF: wait for the next chunk to tell.
      if (this.buffer[nl] === '\r' && nl === this.buffer.length - 1) {
        this.scanned = nl;
        break;
      }
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + (this.buffer.startsWith('\r\n', nl) ? 2 : 1));
      this.scanned = 0;
      if (line === '') {
        if (this.data.length) out.push({ event: this.event || 'message', data: this.data.join('\n'), ...(this.id !== undefined ? { id: this.id } : {}) });
        this.event = '';
        this.data = [];
        this.dataChars = 0;
        this.id = undefined;
        continue;
      }
      if (line.startsWith(':')) continue; // comment (keep-alive)
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.event = value;
      else if (field === 'data') {
        this.data.push(value);
        this.dataChars += value.length + 1;
        if (this.dataChars > this.maxEventChars) throw new EventTooLargeError(this.maxEventChars);
      } else if (field === 'id' && !value.includes('\0')) this.id = value;
    }
    return out;
  }
}

/** Index of the first CR or LF in `s` at or after `from`, or -1. */
function lineEnd(s: string, from: number): number {
  const cr = s.indexOf('\r', from);
  const lf = s.indexOf('\n', from);
  if (cr < 0) return lf;
  if (lf < 0) return cr;
  return Math.min(cr, lf);
}

export interface StreamOptions {
  /** Resume after this event id (global message sequence); undefined = live only. */
  lastEventId?: number;
  /** Called for each event, in order; a rejected promise ends the stream with that error. */
  onEvent(e: SseEvent): Promise<void> | void;
  /** Told about each reconnect (for a note on stderr). */
  onReconnect?(attempt: number, lastEventId: number | undefined, why: string): void;
  /** Ends the stream cleanly (SIGINT, `--count` reached). */
  signal: AbortSignal;
  /** Delay before the n-th consecutive reconnect; default 250 ms doubling to 5 s. */
  backoffMs?: (attempt: number) => number;
  /** Consecutive failed connects before giving up; default 20. */
  maxAttempts?: number;
  /**
   * Silence after which the connection counts as dead and is reconnected: nothing at all arrived
   * (no event, no keep-alive comment, or no answer to the request). Default DEFAULT_IDLE_MS.
   */
  idleMs?: number;
}

/** Three of the server's keep-alive intervals (15 s): one late or lost comment is not a death. */
export const DEFAULT_IDLE_MS = 45_000;

/** An error of the caller's handler: never retried. */
class HandlerFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('event handler failed');
  }
}

/** The stream fell silent for longer than the idle limit: reconnected like any dropped stream. */
class StreamIdle extends Error {
  constructor(ms: number) {
    super(`nothing arrived for ${ms / 1000} s, not even a keep-alive`);
  }
}

/** True for refusals a reconnect cannot fix (session ended, certificate revoked, bad request). */
function isFatal(err: unknown): boolean {
  return (err instanceof ServerError && err.status >= 400 && err.status < 500) || err instanceof EventTooLargeError;
}

/**
 * Follows the stream until `signal` aborts. Message events advance the resume point; after a
 * dropped connection the client reconnects with `Last-Event-ID` = the last message id seen.
 * @throws ServerError for a refusal (e.g. SESSION_EXPIRED, CERT_REVOKED), StreamFailedError after
 *   `maxAttempts` consecutive failures.
 */
export async function followEvents(ep: Endpoint, o: StreamOptions): Promise<void> {
  let last = o.lastEventId;
  let attempt = 0;
  const backoff = o.backoffMs ?? ((n) => Math.min(5000, 250 * 2 ** (n - 1)));
  const idleMs = o.idleMs ?? DEFAULT_IDLE_MS;
  while (!o.signal.aborted) {
    let why = 'the connection ended';
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (last !== undefined) headers['last-event-id'] = String(last);
      // Until the answer's head, the socket's own idle timeout covers connect, TLS and the request
      // (a peer that accepts TCP and then says nothing would otherwise hold the reconnect forever).
      const res = await open(ep, 'GET', '/v1/events', { headers, timeoutMs: idleMs });
      // From here the timer below watches the stream instead: it runs only while we wait for the
      // next chunk, so a slow handler (the socket paused meanwhile) is not taken for a dead peer.
      res.socket.setTimeout(0);
      let idle: NodeJS.Timeout | undefined;
      const arm = (): void => {
        idle = setTimeout(() => res.destroy(new StreamIdle(idleMs)), idleMs);
      };
      const onAbort = (): void => void res.destroy();
      o.signal.addEventListener('abort', onAbort, { once: true });
      try {
        const parser = new SseParser();
        const decoder = new StringDecoder('utf8');
        arm();
        for await (const chunk of res) {
          clearTimeout(idle); // any bytes, a keep-alive comment too, prove the peer alive
          for (const e of parser.push(decoder.write(chunk as Buffer))) {
            if (e.event === 'ready') attempt = 0;
            try {
              await o.onEvent(e);
            } catch (cause) {
              throw new HandlerFailure(cause);
            }
            if (e.event === 'message' && e.id !== undefined && /^\d+$/.test(e.id)) last = Number(e.id);
            if (o.signal.aborted) break;
          }
          if (o.signal.aborted) break;
          arm();
        }
      } finally {
        clearTimeout(idle);
        o.signal.removeEventListener('abort', onAbort);
        res.destroy();
      }
    } catch (err) {
      if (err instanceof HandlerFailure) throw err.cause;
      if (o.signal.aborted) return;
      if (isFatal(err)) throw err;
      if (err instanceof Error) why = err.message;
      else throw err;
    }
    if (o.signal.aborted) return;
    attempt++;
    if (attempt > (o.maxAttempts ?? 20)) throw new StreamFailedError(`${attempt - 1} reconnects failed; last: ${why}`);
    o.onReconnect?.(attempt, last, why);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, backoff(attempt));
      o.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
}
