/**
 * `/v1/files` (API.md "Messaging"): streamed upload into the vault, streamed download, and the
 * uploader's discard of a pending upload.
 *
 * The upload body is read as a stream and never buffered whole; the shell's global body limit
 * must not apply to this route (messaging enforces its own `maxFileBytes`, default 100 MiB).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { messagingErrorHandler, principalOf, requireSession, type MessagingRouteDeps } from '../messaging/http.js';
import type { AppEnv } from '../middleware/types.js';
import { parseParams } from '../middleware/validate.js';
import { IdParam } from './conversations.js';

const UploadQuery = z.object({ conversation: z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'must be a 22-character id') }).strict();
const Length = z.coerce.number().int().nonnegative().optional();

export function filesRoutes(deps: MessagingRouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(messagingErrorHandler);
  // Read per request: the appliance may finish building the service after mounting.
  const svc = (): MessagingRouteDeps['messaging'] => deps.messaging;
  app.use('*', requireSession(deps));

  app.post('/', async (c) => {
    const { conversation } = parseParams(c.req.query(), UploadQuery);
    const length = parseParams(c.req.header('content-length'), Length);
    const r = await svc().upload(principalOf(c), conversation, c.req.raw.body, length);
    return c.json(r, 201);
  });

  app.get('/:id', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    const d = await svc().download(principalOf(c), id);
    return new Response(d.stream, {
      status: 200,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(d.size),
        'x-sigil-sha384': d.sha384,
        'cache-control': 'no-store',
      },
    });
  });

  app.delete('/:id', async (c) => {
    const { id } = parseParams(c.req.param(), IdParam);
    return c.json(await svc().discardUpload(principalOf(c), id), 200);
  });

  return app;
}
