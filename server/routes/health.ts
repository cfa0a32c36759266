/**
 * `GET /v1/health`: liveness for any TLS client (no session). `ok` is false, with the reason, once
 * the root CRL revokes the issuing CA: the server then refuses every other request
 * (certs/root-crl-watch.ts), and a monitor polling health must see that, not "ok".
 */
import { Hono } from 'hono';
import type { AppEnv } from '../middleware/types.js';
import type { AppDeps } from '../app.js';

export function healthRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/', (c) => {
    const base = { version: deps.version ?? '0.1.0', serverTime: deps.now().toISOString() };
    const revoked = deps.appliance.rootCrlWatch?.revoked;
    if (!revoked) return c.json({ ok: true, ...base });
    return c.json({ ok: false, ...base, issuingCaRevoked: { serial: revoked.serial, crlNumber: revoked.crlNumber } });
  });
  return app;
}
