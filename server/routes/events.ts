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
 * A stream ends no later than its session stops being valid, with no timer per connection: see
 * stream-session-watch.ts. The stream itself, its writes and withdrawals, is live-stream.ts's.
 */
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { messagingErrorHandler, principalOf, requireSession, type MessagingRouteDeps } from '../messaging/http.js';
import type { Principal } from '../messaging/index.js';
import type { AppEnv } from '../middleware/types.js';
import { parseParams } from '../middleware/validate.js';
import { errorFields } from '../log.js';
import { STREAMS_PER_USER } from '../config.js';
import { LiveStream, sseFrame, type Svc } from './live-stream.js';
import { StreamSlots } from './stream-slots.js';
import { watchStreamSessions } from './stream-session-watch.js';

const LastEventId = z.coerce.number().int().nonnegative().optional();
const REPLAY_PAGE = 200;

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
  // Every open stream, their keep-alives, periodic session re-checks and session expiries.
  const { track, untrack } = watchStreamSessions(deps, keepAliveMs);

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
