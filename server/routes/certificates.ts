/** `POST /v1/certificates/:serial/revoke` (officer): revoke with an RFC 5280 §5.3.1 reason. */
import { Hono } from 'hono';
import { z } from 'zod';
import { Reason, SerialParam } from '../accounts/schemas.js';
import type { AppDeps } from '../app.js';
import { requireRole } from '../middleware/require-role.js';
import { session } from '../middleware/session.js';
import type { AppEnv } from '../middleware/types.js';
import { parseJson, parseParams } from '../middleware/validate.js';

const RevokeBody = z.object({ reason: Reason }).strict();

export function certificatesRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { sessions, accounts, certificateService } = deps.appliance;
  app.use('*', session({ sessions, accounts }), requireRole('officer'));
  app.post('/:serial/revoke', async (c) => {
    const { serial } = parseParams(c.req.param(), SerialParam);
    const body = await parseJson(c, RevokeBody);
    const rec = await certificateService.revoke(serial, body.reason, c.get('principal').account.login);
    return c.json({ serial: rec.serial, revokedAt: rec.revokedAt?.toISOString(), reason: rec.reason, sameKey: rec.sameKey });
  });
  return app;
}
