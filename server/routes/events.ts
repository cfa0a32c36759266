/**
 * `/v1/events` (API.md "Live events"): Server-Sent Events. Each message event's id is the
 * message's global sequence number; a client reconnecting with `Last-Event-ID: N` first gets
 * every message with seq > N it would have been pushed (from the vault), then the live stream,
 * with nothing lost and nothing twice: the live subscription starts before the replay, and live
 * message events at or below the last replayed seq are skipped. An N above the vault's high-water
 * mark resumes from the mark (see the route).
 *
 * Built to hold thousands of idle connections and fan one message out to hundreds of them
 * (issue 8, bench/live): the stream is written straight to the Node response (no web streams per
 * connection), events are pushed into it synchronously by the hub (no promise per event and
 * connection), each event's SSE frame is encoded once for all its readers, writes of one tick are
 * corked into one TLS write per connection, one timer per route serves the keep-alives and session
 * re-checks of every connection (one session lookup per session, not per connection), and delivery
 * receipts go to the messaging service's process-wide batcher.
 */
import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { z } from 'zod';
import { messagingErrorHandler, principalOf, requireSession, type MessagingRouteDeps } from '../messaging/http.js';
import type { LiveEvent, LiveSink, Subscription } from '../messaging/index.js';
import type { Withdrawal } from '../messaging/event-hub.js';
import type { AppEnv } from '../middleware/types.js';
import { parseParams } from '../middleware/validate.js';
import { errorFields } from '../log.js';

const LastEventId = z.coerce.number().int().nonnegative().optional();
const REPLAY_PAGE = 200;
const KEEP_ALIVE = Buffer.from(': keep-alive\n\n');

/** The SSE frame of an event, encoded once per event whatever the number of its readers. */
const frames = new WeakMap<LiveEvent, Buffer>();
function frameOf(ev: LiveEvent): Buffer {
  let f = frames.get(ev);
  if (!f) {
    f = Buffer.from(sseFrame(ev.kind, JSON.stringify(ev.data), ev.kind === 'message' ? ev.seq : undefined));
    frames.set(ev, f);
  }
  return f;
}

/** `event:`/`id:`/`data:` lines; JSON has no raw newline, so the data is one line. */
function sseFrame(event: string, data: string, id?: number): string {
  return `event: ${event}\n${id !== undefined ? `id: ${id}\n` : ''}data: ${data}\n\n`;
}

type Svc = () => MessagingRouteDeps['messaging'];

/**
 * One open stream: the sink of its subscription. Kept small on purpose (one per idle connection):
 * no closure per connection besides the response's close listener.
 */
class LiveStream implements LiveSink {
  /** Highest message seq written (replayed or live); live events at or below it are skipped. */
  last = 0;
  #corked = false;
  #ended = false;
  /**
   * The messages written since the socket's buffer was last empty, as flat (conversation, id)
   * pairs: what may still sit in this process, unsent, when a deletion of it commits. One array,
   * emptied in place, so delivering to an idle connection allocates nothing.
   */
  #unsent: (string | undefined)[] | undefined;

  constructor(
    readonly out: ServerResponse,
    readonly sub: Subscription,
    readonly login: string,
    readonly token: string,
    readonly fingerprint: string,
    readonly svc: Svc,
  ) {}

  deliver(ev: LiveEvent): boolean {
    if (this.#ended) return true;
    if (ev.kind === 'message') {
      if (ev.seq <= this.last) return true;
      this.last = ev.seq;
      const unsent = (this.#unsent ??= []);
      if (this.out.writableLength === 0) unsent.length = 0; // all before it left the process
      unsent.push(ev.conversation, ev.id);
      // Pushed counts as delivered (API.md receipts); written in the service's next batch.
      this.svc().reportDelivered(this.login, ev.conversation, ev.seq);
    }
    if (this.write(frameOf(ev))) return true;
    // Congested: the subscription queues (bounded) until the socket drains.
    this.out.once('drain', () => this.sub.resume());
    return false;
  }

  /**
   * A deletion committed. A frame of what it destroyed that still waits in the socket's buffer
   * cannot be taken back out of it: the connection is cut instead (the client resumes with
   * Last-Event-ID, and the vault no longer has what was deleted).
   */
  withdraw(w: Withdrawal): void {
    const unsent = this.#unsent;
    if (this.#ended || this.out.destroyed || !unsent?.length) return;
    if (this.out.writableLength === 0) {
      unsent.length = 0;
      return;
    }
    for (let i = 0; i < unsent.length; i += 2) {
      if (unsent[i] !== w.conversation) continue;
      const id = unsent[i + 1];
      // A message without an id cannot be told apart: cut, as the hub drops such a queue.
      if (!w.ids || id === undefined || w.ids.has(id)) return void this.out.destroy();
    }
  }

  /** Writes, corking the socket until the end of the tick: a batch of messages → one TLS write. */
  write(chunk: Buffer | string): boolean {
    const out = this.out;
    if (this.#ended || out.destroyed) return true;
    if (!this.#corked) {
      this.#corked = true;
      out.cork();
      process.nextTick(uncork, this);
    }
    return out.write(chunk);
  }

  uncork(): void {
    this.#corked = false;
    if (!this.out.destroyed) this.out.uncork();
  }

  /** A write returned false: resolves when the socket drained or closed. */
  drained(): Promise<void> {
    const out = this.out;
    if (!out.writableNeedDrain || out.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        out.off('drain', done);
        out.off('close', done);
        resolve();
      };
      out.on('drain', done);
      out.on('close', done);
    });
  }

  /** The subscription ended (queue overflow, service closing, session ended): end the response. */
  ended(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.out.destroyed && !this.out.writableEnded) this.out.end();
  }

  get isEnded(): boolean {
    return this.#ended;
  }
}

function uncork(s: LiveStream): void {
  s.uncork();
}

/**
 * @param opts.keepAliveMs - interval of keep-alive comments and of the session re-check: a stream
 *   whose session ended (logout, certificate revoked, account disabled, expiry) is closed within
 *   one interval, since the per-request checks do not run again on a long-lived response.
 */
export function eventsRoutes(deps: MessagingRouteDeps, opts: { keepAliveMs?: number } = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(messagingErrorHandler);
  // Read per request: the appliance may finish building the service after mounting.
  const svc: Svc = () => deps.messaging;
  const keepAliveMs = opts.keepAliveMs ?? 15_000;
  app.use('*', requireSession(deps));

  // Every open stream, and one timer for all their keep-alives and session re-checks.
  const open = new Set<LiveStream>();
  let ticker: NodeJS.Timeout | undefined;
  /** Re-checks every open stream's session (ending those that fail), and writes a keep-alive to the rest if asked. */
  const tick = (keepAlive = true): void => {
    // Streams of one session share one lookup (the store touches last_used_at rarely: a read).
    const bySession = new Map<string, LiveStream[]>();
    for (const s of open) {
      const key = `${s.token} ${s.fingerprint}`;
      const list = bySession.get(key);
      if (list) list.push(s);
      else bySession.set(key, [s]);
    }
    for (const streams of bySession.values()) {
      const { token, fingerprint } = streams[0]!;
      deps.appliance.sessions.resolve(token, fingerprint).then(
        () => {
          if (keepAlive) for (const s of streams) if (!s.out.writableNeedDrain) s.write(KEEP_ALIVE);
        },
        () => {
          for (const s of streams) s.sub.close();
        },
      );
    }
  };
  // A session ended elsewhere (revocation, clearance change, disable, reset, logout): re-check the
  // open streams now. Waiting for the next tick let a downgraded or revoked user's open stream
  // receive up to keepAliveMs of messages, above the new clearance too.
  deps.appliance.sessions.onSessionsEnded(() => {
    if (open.size > 0) tick(false);
  });
  const track = (s: LiveStream): void => {
    open.add(s);
    ticker ??= setInterval(() => tick(), keepAliveMs).unref();
  };
  const untrack = (s: LiveStream): void => {
    open.delete(s);
    if (open.size === 0 && ticker) {
      clearInterval(ticker);
      ticker = undefined;
    }
  };

  app.get('/', async (c) => {
    const p = principalOf(c);
    const from = parseParams(c.req.header('last-event-id') ?? c.req.query('lastEventId'), LastEventId);
    const out = c.env.outgoing;
    // Subscribe before replaying, so nothing committed during the replay is missed.
    const sub = svc().subscribe(p);
    const token = /^Bearer (\S+)$/.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
    const s = new LiveStream(out, sub, p.login, token, c.get('clientCert').fingerprint, svc);
    track(s);
    const finish = (): void => {
      untrack(s);
      s.ended();
      sub.close();
    };
    out.once('close', finish);
    // The client may have gone while the request was still in the middleware: then 'close' has
    // already fired, and the subscription would live on unread (delivering to a dead socket and
    // recording deliveries that never happened).
    if (out.destroyed || !out.socket || out.socket.destroyed) {
      finish();
      return RESPONSE_ALREADY_SENT;
    }
    out.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Request-Id': c.get('requestId'),
    });
    try {
      if (from !== undefined) {
        // Live events at or below s.last are skipped as seen, so an id above anything the vault
        // numbered (restored from an older backup, a bogus id) would hide every new message until
        // the sequence caught up. Nothing exists above the high-water mark: resume from it, and
        // ready tells the client. Read after subscribing: whatever commits from now on is
        // numbered above it and published to the subscription, so none is lost.
        const hi = await svc().highWater();
        if (from > hi) {
          c.get('log').warn('events: Last-Event-ID above the high-water mark, resuming from the mark', {
            login: p.login,
            reason: `lastEventId ${from} > high-water ${hi}`,
          });
        }
        s.last = Math.min(from, hi);
        for (;;) {
          const page = await svc().since(p, s.last, REPLAY_PAGE);
          for (const m of page) {
            if (s.isEnded || out.destroyed) {
              finish();
              return RESPONSE_ALREADY_SENT;
            }
            s.write(sseFrame('message', JSON.stringify(m), m.seq));
            s.last = m.seq;
            svc().reportDelivered(p.login, m.conversation, m.seq);
            await s.drained();
          }
          if (page.length < REPLAY_PAGE) break;
        }
      }
      s.write(sseFrame('ready', JSON.stringify({ lastEventId: s.last })));
      // Live from here: what queued during the replay first, then each event as it is published.
      // A queue overflow (a slow reader) or the service closing ends the stream; the client resumes.
      sub.attach(s);
    } catch (err) {
      // The headers are sent: no error body any more. End; the client resumes from its last id.
      c.get('log').warn('events: replay failed', errorFields(err));
      s.ended();
      sub.close();
    }
    return RESPONSE_ALREADY_SENT;
  });

  return app;
}
