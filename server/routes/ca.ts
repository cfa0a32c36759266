/** `GET /v1/ca`: the appliance CA certificates, for any TLS client. */
import { Hono } from 'hono';
import type { AppEnv } from '../middleware/types.js';
import type { AppDeps } from '../app.js';

export function caRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { rootCert, issuingCert } = deps.appliance;
  app.get('/', (c) => c.json({ root: rootCert.pem, chain: issuingCert.pem + rootCert.pem }));
  return app;
}
