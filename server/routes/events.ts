/**
 * `/v1/events` (API.md "Live events"): Server-Sent Events. Each message event's id is the
 * message's global sequence number; a client reconnecting with `Last-Event-ID: N` first gets
 * every message with seq > N it would have been pushed (from the vault), then the live stream,
 * with nothing lost and nothing twice: the live subscription starts before the replay, and live
 * message events at or below the last replayed seq are skipped.
 */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { messagingErrorHandler, principalOf, requireSession, type MessagingRouteDeps } from '../messaging/http.js';
import type { AppEnv } from '../middleware/types.js';
import { parseParams } from '../middleware/validate.js';

const LastEventId = z.coerce.number().int().nonnegative().optional();
const REPLAY_PAGE = 200;

/**
 * @param opts.keepAliveMs - interval of keep-alive comments and of the session re-check: a stream
 *   whose session ended (logout, certificate revoked, account disabled, expiry) is closed within
 *   one interval, since the per-request checks do not run again on a long-lived response.
 */
export function eventsRoutes(deps: MessagingRouteDeps, opts: { keepAliveMs?: number } = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(messagingErrorHandler);
  // Read per request: the appliance may finish building the service after mounting.
  const svc = (): MessagingRouteDeps['messaging'] => deps.messaging;
  const keepAliveMs = opts.keepAliveMs ?? 15_000;
  app.use('*', requireSession(deps));

  app.get('/', async (c) => {
    const p = principalOf(c);
    const from = parseParams(c.req.header('last-event-id') ?? c.req.query('lastEventId'), LastEventId);
    // Subscribe before replaying, so nothing committed during the replay is missed.
    const sub = svc().subscribe(p);
    const token = /^Bearer (\S+)$/.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
    const fingerprint = c.get('clientCert').fingerprint;
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => sub.close());
      const ping = setInterval(() => {
        deps.appliance.sessions
          .resolve(token, fingerprint)
          .then(() => stream.write(': keep-alive\n\n'))
          .catch(() => sub.close());
      }, keepAliveMs);
      // Delivery receipts for what was pushed, written at most once per keep-alive interval.
      const delivered = new Map<string, number>();
      const flushDelivered = (): void => {
        for (const [conv, seq] of delivered) void svc().markDelivered(p, conv, seq).catch(() => undefined);
        delivered.clear();
      };
      const receipts = setInterval(flushDelivered, Math.min(keepAliveMs, 1000));
      const pushed = (m: { conversation: string; seq: number }): void => {
        if ((delivered.get(m.conversation) ?? 0) < m.seq) delivered.set(m.conversation, m.seq);
      };
      try {
        let last = from ?? 0;
        if (from !== undefined) {
          for (;;) {
            const page = await svc().since(p, last, REPLAY_PAGE);
            for (const m of page) {
              await stream.writeSSE({ event: 'message', id: String(m.seq), data: JSON.stringify(m) });
              last = m.seq;
              pushed(m);
            }
            if (page.length < REPLAY_PAGE) break;
          }
        }
        await stream.writeSSE({ event: 'ready', data: JSON.stringify({ lastEventId: last }) });
        for await (const ev of sub) {
          if (ev.kind === 'message') {
            if (ev.seq <= last) continue;
            last = ev.seq;
            await stream.writeSSE({ event: 'message', id: String(ev.seq), data: JSON.stringify(ev.data) });
            pushed(ev.data as { conversation: string; seq: number });
          } else {
            await stream.writeSSE({ event: ev.kind, data: JSON.stringify(ev.data) });
          }
        }
        // The queue overflowed (a slow reader) or the service closed: end; the client resumes.
      } finally {
        clearInterval(receipts);
        flushDelivered();
        clearInterval(ping);
        sub.close();
      }
    });
  });

  return app;
}
