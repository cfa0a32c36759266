/**
 * `/v1/messages` (API.md "Messaging"): send a signed message (or several in one batch, or a stream
 * of them: message-stream.ts), read one, its receipts, delete it for everyone. Also
 * `correspondenceRoutes` for the officer's `DELETE /v1/users/:login/correspondence`, mounted by
 * the shell under `/v1/users`.
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { errorFields } from '../log.js';
import { MessageAnswers, messagingBodyLimit, messagingErrorHandler, principalOf, requireSession, type MessagingRouteDeps } from '../messaging/http.js';
import type { AppEnv } from '../middleware/types.js';
import { parseJson, parseParams } from '../middleware/validate.js';
import { DeleteBody, IdParam } from './conversations.js';
import { messageStreamHandler, SendBody, type MessageStreamOptions } from './message-stream.js';

/**
 * `POST /batch`: several messages in one request. The items' shape is checked here, all or none
 * (a malformed item refuses the request and stores nothing); what each item says is checked by
 * the service, each on its own.
 */
const batchBodies = new Map<number, z.ZodType<{ messages: z.infer<typeof SendBody>[] }>>();
const BatchBody = (max: number): z.ZodType<{ messages: z.infer<typeof SendBody>[] }> => {
  let schema = batchBodies.get(max);
  if (!schema) batchBodies.set(max, (schema = z.object({ messages: z.array(SendBody).min(1).max(max) }).strict()));
  return schema;
};

/**
 * Parses a batch and hands it to the service. Not part of the handler: an async function keeps
 * its locals until it returns, and the parsed batch (its base64 text, ~2.3 kB a message) would
 * then live through the ~0.3 s its checks wait under load, copied by every scavenge meanwhile.
 */
function sendBatch(c: Context<AppEnv>, svc: MessagingRouteDeps['messaging']): ReturnType<MessagingRouteDeps['messaging']['sendMany']> {
  return parseJson(c, BatchBody(svc.config.maxBatchMessages)).then(({ messages }) => svc.sendMany(principalOf(c), messages));
}

/** `POST /`'s {@link sendBatch}. */
function sendOne(c: Context<AppEnv>, svc: MessagingRouteDeps['messaging']): ReturnType<MessagingRouteDeps['messaging']['send']> {
  return parseJson(c, SendBody).then((body) => svc.send(principalOf(c), body));
}

export function messagesRoutes(deps: MessagingRouteDeps, opts: { stream?: MessageStreamOptions } = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(messagingErrorHandler);
  // Read per request: the appliance may finish building the service after mounting.
  const svc = (): MessagingRouteDeps['messaging'] => deps.messaging;
  app.use('*', requireSession(deps));
  app.use('/', messagingBodyLimit(deps, 'message'));
  // Before the `/:id` middleware: this handler answers, so the small limit of `/:id` never runs
  // for it. The whole batch stays under one message's limit.
  app.post('/batch', messagingBodyLimit(deps, 'message'), async (c) => {
    const outcomes = await sendBatch(c, svc());
    const answers = new MessageAnswers(c.get('requestId') ?? 'none', (err) =>
      c.get('log')?.error('internal error', { path: c.req.path, ...errorFields(err) }),
    );
    const results = outcomes.map((o) => answers.answer(o));
    // The request answers 200 whatever its messages got: its log line says what they got.
    c.set('accessLogFields', answers.logFields());
    return c.json({ results });
  });
  // No body limit for the whole stream: each line is limited to one message's (message-stream.ts).
  app.post('/stream', messageStreamHandler(deps, opts.stream));
  app.use('/:id', messagingBodyLimit(deps, 'small'));

  app.post('/', async (c) => c.json(await sendOne(c, svc()), 201));

  app.get('/:id', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    return c.json(await svc().message(principalOf(c), id));
  });

  app.get('/:id/receipts', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    return c.json(await svc().receipts(principalOf(c), id));
  });

  app.delete('/:id', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    const body = await parseJson(c, DeleteBody);
    return c.json(await svc().deleteMessage(principalOf(c), id, body));
  });

  return app;
}

const LoginParam = z.object({ login: z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be a login') });

/** `DELETE /:login/correspondence` — mount under `/v1/users`. Officers only (checked by the service). */
export function correspondenceRoutes(deps: MessagingRouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(messagingErrorHandler);
  app.use('/:login/correspondence', requireSession(deps));
  app.use('/:login/correspondence', messagingBodyLimit(deps, 'small'));
  app.delete('/:login/correspondence', async (c) => {
    const { login } = parseParams({ login: c.req.param('login') }, LoginParam);
    const body = await parseJson(c, DeleteBody);
    return c.json(await deps.messaging.deleteUserCorrespondence(principalOf(c), login, body));
  });
  return app;
}
