/**
 * `/v1/conversations` (API.md "Messaging"): direct conversations, the caller's list with unread
 * counts, history pages, read receipts, mute, and destroying a conversation.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { messagingBodyLimit, messagingErrorHandler, principalOf, requireSession, type MessagingRouteDeps } from '../messaging/http.js';
import type { AppEnv } from '../middleware/types.js';
import { parseJson, parseParams } from '../middleware/validate.js';

/** Conversation and message ids: 22 characters of base64url. */
export const IdParam = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'must be a 22-character id') });
const Login = z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a login');
const DirectBody = z.object({ peer: Login }).strict();
const HistoryQuery = z
  .object({
    before: z.coerce.number().int().positive().optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
  })
  .strict();
const ReadBody = z.object({ upTo: z.number().int().nonnegative() }).strict();
const MuteBody = z.object({ muted: z.boolean() }).strict();

/** The body of every deletion: the reason and the deleter's signed `sigil-delete` statement. */
export const DeleteBody = z
  .object({
    reason: z.string().min(1).max(500),
    statement: z.string().min(1).max(4096),
    signature: z.string().min(1).max(64 * 1024),
  })
  .strict();

export function conversationsRoutes(deps: MessagingRouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(messagingErrorHandler);
  // Read per request: the appliance may finish building the service after mounting.
  const svc = (): MessagingRouteDeps['messaging'] => deps.messaging;
  app.use('*', requireSession(deps));
  app.use('*', messagingBodyLimit(deps, 'small'));

  app.post('/direct', async (c) => {
    const body = await parseJson(c, DirectBody);
    return c.json(await svc().direct(principalOf(c), body.peer));
  });

  app.get('/', async (c) => c.json({ conversations: await svc().conversations(principalOf(c)) }));

  app.get('/:id', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    return c.json(await svc().conversation(principalOf(c), id));
  });

  app.get('/:id/messages', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    const q = parseParams(c.req.query(), HistoryQuery);
    return c.json(await svc().history(principalOf(c), id, q));
  });

  app.post('/:id/read', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    const body = await parseJson(c, ReadBody);
    await svc().markRead(principalOf(c), id, body.upTo);
    return c.json({ ok: true });
  });

  app.post('/:id/mute', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    const body = await parseJson(c, MuteBody);
    return c.json(await svc().mute(principalOf(c), id, body.muted));
  });

  app.delete('/:id', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    const body = await parseJson(c, DeleteBody);
    return c.json(await svc().deleteConversation(principalOf(c), id, body));
  });

  return app;
}
