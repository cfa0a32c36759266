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
 * corked into one TLS write per connection, one interval per route serves the keep-alives and
 * periodic session re-checks of every connection (one session lookup per session, not per
 * connection), and delivery receipts go to the messaging service's process-wide batcher.
 *
 * A stream ends no later than its session stops being valid, with no timer per connection.
 * Sessions ended elsewhere (logout, revocation, a disabled account) are announced by the store, and
 * every open stream is re-checked at once. For expiry (absolute lifetime, capped at the
 * certificate's notAfter, or idle timeout), each lookup of the store answers how long the session
 * stays valid unless used again (`validForMs`, by the store's clock); the stream keeps that instant
 * on the monotonic clock (one number per connection), and ONE timeout per route, armed at the
 * earliest such instant among the open streams, re-checks the streams then due through the store:
 * a session extended meanwhile (its idle deadline moved by other requests) keeps its stream, which
 * is re-armed for the new deadline; an expired one ends it as any other ended session does. The
 * periodic re-check stays as the backstop (e.g. a wall clock stepped forward after a stream
 * learned its expiry).
 */
import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { messagingErrorHandler, principalOf, requireSession, type MessagingRouteDeps } from '../messaging/http.js';
import type { LiveEvent, LiveSink, Principal, Subscription } from '../messaging/index.js';
import type { Withdrawal } from '../messaging/event-hub.js';
import type { AppEnv } from '../middleware/types.js';
import { parseParams } from '../middleware/validate.js';
import { errorFields } from '../log.js';
import { STREAMS_PER_USER } from '../config.js';
import { StreamSlots } from './stream-slots.js';

const LastEventId = z.coerce.number().int().nonnegative().optional();
const REPLAY_PAGE = 200;
const KEEP_ALIVE = Buffer.from(': keep-alive\n\n');
/** The longest delay node's timers take (about 24.8 days); a later expiry is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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
  /**
   * When (performance.now()) its session stops being valid unless used again, as the store last
   * answered; Infinity while a re-check is under way (its answer sets the next one).
   */
  due = Infinity;
  #corked = false;
  #ended = false;
  /**
   * The messages written since the socket's buffer was last empty, as flat (conversation, id)
   * pairs: what may still sit in this process, unsent, when a deletion of it commits. One array,
   * emptied in place, so delivering to an idle connection allocates nothing.
   */
  #unsent: (string | undefined)[] | undefined;
  /**
   * While the replay runs: the deletions committed since it began. Its page was read before them,
   * so what they cover must not be written from it.
   */
  #replayWithdrawn: Withdrawal[] | undefined;

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
      this.#track(ev.conversation, ev.id);
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
    this.#replayWithdrawn?.push(w);
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

  /** Notes a message written: until the socket's buffer empties, a deletion of it cuts the connection. */
  #track(conversation: string, id: string | undefined): void {
    const unsent = (this.#unsent ??= []);
    if (this.out.writableLength === 0) unsent.length = 0; // all before it left the process
    unsent.push(conversation, id);
  }

  /** The replay begins: deletions from now on are remembered for {@link replayable}. */
  replayStarts(): void {
    this.#replayWithdrawn = [];
    this.sub.watch(this);
  }

  /** The replay ended: live delivery (with its own withdrawals) takes over. */
  replayEnds(): void {
    this.#replayWithdrawn = undefined;
  }

  /** Whether a replayed message, read before the deletions since the replay began, is still to be sent. */
  replayable(conversation: string, id: string): boolean {
    for (const w of this.#replayWithdrawn ?? []) if (w.conversation === conversation && (!w.ids || w.ids.has(id))) return false;
    return true;
  }

  /** Writes a replayed message, tracked as a live one is so that a deletion committed while it waits is withdrawn. */
  writeReplayed(conversation: string, id: string, frame: string): void {
    this.#track(conversation, id);
    this.write(frame);
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
 * @param opts.keepAliveMs - interval of keep-alive comments and of the periodic session re-check
 *   (default 15 s), since the per-request checks do not run again on a long-lived response. A
 *   stream is also re-checked at once when sessions end elsewhere (logout, revocation, a disabled
 *   account), and at the instant its session would expire (absolute or idle timeout): it ends then,
 *   not up to one interval later.
 */
export function eventsRoutes(deps: MessagingRouteDeps, opts: { keepAliveMs?: number; maxPerUser?: number } = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(messagingErrorHandler);
  // Read per request: the appliance may finish building the service after mounting.
  const svc: Svc = () => deps.messaging;
  const keepAliveMs = opts.keepAliveMs ?? 15_000;
  app.use('*', requireSession(deps));

  // Every open stream; one interval for all their keep-alives and periodic session re-checks, and
  // one timeout for the earliest session expiry among them.
  const open = new Set<LiveStream>();
  let ticker: NodeJS.Timeout | undefined;
  let expiry: NodeJS.Timeout | undefined;
  /** The instant (performance.now()) `expiry` fires at; Infinity when not armed. */
  let expiryAt = Infinity;

  /** Arms the expiry timeout for `due` unless it already fires no later. */
  const armExpiry = (due: number): void => {
    if (due >= expiryAt) return;
    if (expiry) clearTimeout(expiry);
    expiryAt = due;
    // Never 0: a store whose clock lags the timers answers "valid for 0.3 ms more" (no busy loop).
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(due - performance.now())));
    expiry = setTimeout(onExpiry, delay).unref();
  };
  const disarmExpiry = (): void => {
    if (expiry) clearTimeout(expiry);
    expiry = undefined;
    expiryAt = Infinity;
  };
  /** The expiry timeout fired: re-checks the streams now due, re-arms for the earliest of the rest. */
  const onExpiry = (): void => {
    expiry = undefined;
    expiryAt = Infinity;
    const at = performance.now();
    let due: LiveStream[] | undefined;
    let next = Infinity;
    for (const s of open) {
      if (s.due <= at) (due ??= []).push(s);
      else if (s.due < next) next = s.due;
    }
    if (next !== Infinity) armExpiry(next);
    if (due) recheck(due, false);
  };

  /**
   * Re-checks the sessions of `streams` through the store: those refused end (the subscription
   * closes, the response ends); the others learn their session's next expiry. Streams of one
   * session share one lookup. The periodic re-check (`periodic`) also writes the keep-alives. No
   * re-check is use of the session: an open stream is no sign that anyone is at the workstation, and
   * when the periodic one counted, a stream re-checked more often than the idle timeout (15 s
   * against 30 min by default) kept its session from ever idling out. A stream whose session is
   * used by nothing else ends at the session's idle deadline.
   */
  const recheck = (streams: Iterable<LiveStream>, periodic: boolean): void => {
    const bySession = new Map<string, LiveStream[]>();
    for (const s of streams) {
      s.due = Infinity;
      const key = `${s.token} ${s.fingerprint}`;
      const list = bySession.get(key);
      if (list) list.push(s);
      else bySession.set(key, [s]);
    }
    for (const list of bySession.values()) {
      const { token, fingerprint } = list[0]!;
      // Taken before asking: the store reads its clock after this, so the expiry is never late.
      const asked = performance.now();
      deps.appliance.sessions.resolve(token, fingerprint, { touch: false }).then(
        (session) => {
          const due = asked + session.validForMs;
          for (const s of list) {
            if (s.isEnded || !open.has(s)) continue;
            s.due = due;
            if (periodic && !s.out.writableNeedDrain) s.write(KEEP_ALIVE);
          }
          armExpiry(due);
        },
        () => {
          for (const s of list) endStream(s);
        },
      );
    }
  };
  const tick = (): void => recheck(open, true);
  // A session ended elsewhere (revocation, clearance change, disable, reset, logout): re-check the
  // open streams now. Waiting for the next tick let a downgraded or revoked user's open stream
  // receive up to keepAliveMs of messages, above the new clearance too.
  deps.appliance.sessions.onSessionsEnded(() => {
    if (open.size > 0) recheck(open, false);
  });
  /**
   * Ends a stream whose session was refused: closes the subscription, ends the response (also
   * mid-replay, which stops at its next message; 'close' then untracks it).
   */
  const endStream = (s: LiveStream): void => {
    s.sub.close();
    s.ended();
  };
  /** Tracks `s`, whose session expires at `due` (performance.now()) unless used again. */
  const track = (s: LiveStream, due: number): void => {
    open.add(s);
    s.due = due;
    armExpiry(due);
    ticker ??= setInterval(tick, keepAliveMs).unref();
  };
  const untrack = (s: LiveStream): void => {
    open.delete(s);
    if (open.size === 0) {
      if (ticker) clearInterval(ticker);
      ticker = undefined;
      disarmExpiry();
    }
  };

  const slots = new StreamSlots(opts.maxPerUser ?? STREAMS_PER_USER.events, 'live event streams');

  app.get('/', async (c) => {
    // Hono answers HEAD with the GET handler and drops what it returns: this one writes the
    // response itself, which would then be written twice. A HEAD learns the type, no stream.
    if (c.req.method === 'HEAD') return c.body(null, 200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    const p = principalOf(c);
    const from = parseParams(c.req.header('last-event-id') ?? c.req.query('lastEventId'), LastEventId);
    const release = slots.take(p.login);
    try {
      return await serve(c, p, from, release);
    } catch (err) {
      release();
      throw err;
    }
  });

  async function serve(c: Context<AppEnv>, p: Principal, from: number | undefined, release: () => void): Promise<Response> {
    const out = c.env.outgoing;
    const token = /^Bearer (\S+)$/.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
    const fingerprint = c.get('clientCert').fingerprint;
    // The middleware resolved the session, but not at a known instant: asked again (a cached read,
    // its idle touch just done) to learn exactly when it expires. Refused now (it expired in
    // between) → the ordinary error answer, nothing sent yet.
    const asked = performance.now();
    const { validForMs } = await deps.appliance.sessions.resolve(token, fingerprint, { touch: false });
    // Subscribe before replaying, so nothing committed during the replay is missed.
    const sub = svc().subscribe(p);
    const s = new LiveStream(out, sub, p.login, token, fingerprint, svc);
    track(s, asked + validForMs);
    const finish = (): void => {
      untrack(s);
      s.ended();
      sub.close();
      release();
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
        // A page is read, decrypted, then written while the reader drains it: a deletion that
        // commits meanwhile must neither be written from the page nor stay in the socket's buffer
        // (API.md: a deleted message is never sent afterwards).
        s.replayStarts();
        for (;;) {
          const page = await svc().since(p, s.last, REPLAY_PAGE);
          for (const m of page) {
            if (s.isEnded || out.destroyed) {
              finish();
              return RESPONSE_ALREADY_SENT;
            }
            s.last = m.seq;
            if (!s.replayable(m.conversation, m.id)) continue;
            s.writeReplayed(m.conversation, m.id, sseFrame('message', JSON.stringify(m), m.seq));
            svc().reportDelivered(p.login, m.conversation, m.seq);
            await s.drained();
          }
          if (page.length < REPLAY_PAGE) break;
        }
        s.replayEnds();
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
  }

  return app;
}
