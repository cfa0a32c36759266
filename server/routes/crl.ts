/**
 * `GET /v1/crl`: the current CRL for every TLS client; `POST /v1/crl`: an officer publishes a
 * new one (revocations publish one by themselves).
 */
import { Hono } from 'hono';
import { Crl } from '../../pki/index.js';
import { ServerError } from '../errors.js';
import { requireRole } from '../middleware/require-role.js';
import { session } from '../middleware/session.js';
import type { AppEnv } from '../middleware/types.js';
import type { AppDeps } from '../app.js';

export function crlRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { certificates, sessions, accounts, certificateService } = deps.appliance;
  app.get('/', async (c) => {
    const rec = await certificates.latestCrl();
    if (!rec) throw new ServerError('NOT_FOUND', 'no CRL has been published yet');
    return c.json({
      crl: Crl.fromDer(rec.der).pem,
      crlNumber: rec.number,
      thisUpdate: rec.thisUpdate.toISOString(),
      nextUpdate: rec.nextUpdate.toISOString(),
    });
  });
  app.post('/', session({ sessions, accounts }), requireRole('officer'), async (c) => {
    const rec = await certificateService.publishCrl(c.get('principal').account.login);
    return c.json({ crlNumber: rec.number, thisUpdate: rec.thisUpdate.toISOString(), nextUpdate: rec.nextUpdate.toISOString() });
  });
  return app;
}
