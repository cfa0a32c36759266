/** `GET /v1/health`: liveness for any TLS client (no session). */
import { Hono } from 'hono';
import type { AppEnv } from '../middleware/types.js';
import type { AppDeps } from '../app.js';

export function healthRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/', (c) => c.json({ ok: true, version: deps.version ?? '0.1.0', serverTime: deps.now().toISOString() }));
  return app;
}
