/**
 * The app outside the TLS server (app.request, no socket): the client-certificate middleware
 * refuses every route with CLIENT_CERT_REQUIRED, so no route is reachable without TLS.
 */
import t from 'tap';
import { createApp } from '../../../server/index.js';
import { startTestAppliance } from '../../helpers/appliance.js';

t.test('when a request arrives without a TLS socket then 401 CLIENT_CERT_REQUIRED', async (t) => {
  const a = await startTestAppliance({ skipOfficerFirstLogin: true });
  t.teardown(() => a.stop());
  const app = createApp(a.deps);
  for (const path of ['/v1/health', '/v1/auth/challenge', '/v1/users', '/v1/unknown']) {
    const r = await app.request(path, { method: 'POST', body: '{}' });
    t.equal(r.status, 401, path);
    const body = (await r.json()) as { error: { code: string; requestId: string } };
    t.equal(body.error.code, 'CLIENT_CERT_REQUIRED');
    t.equal(body.error.requestId, r.headers.get('x-request-id'));
  }
});
