/**
 * `GET /v1/crl`: the current CRL for every TLS client; `POST /v1/crl`: an officer publishes a
 * new one (revocations publish one by themselves). `GET /v1/crl/root`: the root CA's CRL (covers
 * the issuing CA), signed offline at init and at each key ceremony (`sigil-server sign-root-crl`)
 * and read from `ca/root-crl.pem` at each request, so a ceremony needs no restart. No file: 404
 * NOT_FOUND; a file that is not a CRL: 404 ROOT_CRL_UNUSABLE (the appliance serves none it can use).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Hono } from 'hono';
import { Crl } from '../../pki/index.js';
import { ServerError } from '../errors.js';
import { errorFields } from '../log.js';
import { requireRole } from '../middleware/require-role.js';
import { session } from '../middleware/session.js';
import type { AppEnv } from '../middleware/types.js';
import type { AppDeps } from '../app.js';
import { PATHS } from '../appliance.js';

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
  app.get('/root', async (c) => {
    let pem: string;
    try {
      pem = await readFile(join(deps.appliance.dataDir, PATHS.rootCrl), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new ServerError('NOT_FOUND', 'no root CRL: this appliance predates it; sign one with sigil-server sign-root-crl');
    }
    let crl: Crl;
    try {
      crl = Crl.fromPem(pem);
    } catch (err) {
      // The appliance's own file, not the request, is at fault: no 400 (MALFORMED_INPUT would tell
      // clients they sent something wrong), and no 500 either — it is a known state, and the
      // answer says who mends it. What is wrong with the file goes to the log only.
      c.get('log').error('root CRL unusable', { file: PATHS.rootCrl, ...errorFields(err) });
      throw new ServerError('ROOT_CRL_UNUSABLE', `the appliance's root CRL (${PATHS.rootCrl}) is not a readable CRL; its officer signs a new one with sigil-server sign-root-crl`);
    }
    return c.json({
      crl: crl.pem,
      crlNumber: Number(crl.crlNumber),
      thisUpdate: crl.thisUpdate.toISOString(),
      nextUpdate: crl.nextUpdate.toISOString(),
    });
  });
  app.post('/', session({ sessions, accounts }), requireRole('officer'), async (c) => {
    const rec = await certificateService.publishCrl(c.get('principal').account.login);
    return c.json({ crlNumber: rec.number, thisUpdate: rec.thisUpdate.toISOString(), nextUpdate: rec.nextUpdate.toISOString() });
  });
  return app;
}
