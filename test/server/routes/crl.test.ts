/**
 * `GET /v1/crl/root` when the appliance's own `ca/root-crl.pem` is not a CRL (a real appliance over
 * real TLS): an honest 404 ROOT_CRL_UNUSABLE naming the ceremony that mends it — not 400
 * MALFORMED_INPUT, which blames the client, and not 500 — with the file's problem in the log only.
 */
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { startTestAppliance } from '../../helpers/appliance.js';
import { appRootCrl } from '../../client-cli/messaging/helpers/root-crl.js';

const app = await startTestAppliance({ captureLogs: true });
t.teardown(() => app.stop());

t.test('when the root CRL file is corrupt then GET /v1/crl/root answers 404 ROOT_CRL_UNUSABLE and logs why', async (t) => {
  const served = appRootCrl(app);
  served.replace(t, '-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n');
  const r = await app.request('/v1/crl/root');
  t.equal(r.status, 404, JSON.stringify(r.body));
  t.equal(r.body.error.code, 'ROOT_CRL_UNUSABLE');
  t.match(r.body.error.message, /root CRL \(ca\/root-crl\.pem\) is not a readable CRL.*sigil-server sign-root-crl/);
  t.notMatch(JSON.stringify(r.body), /bm90IGEgQ1JM/, 'the file is not echoed');
  const line = app.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'root CRL unusable');
  t.match(line, { level: 'error', file: 'ca/root-crl.pem', errorMessage: /\S/, requestId: r.body.error.requestId });

  writeFileSync(served.file, 'not even PEM\n');
  const garbage = await app.request('/v1/crl/root');
  t.equal(garbage.status, 404);
  t.equal(garbage.body.error.code, 'ROOT_CRL_UNUSABLE');
});

t.test('when the root CRL file is missing then it stays 404 NOT_FOUND, and a good one is served', async (t) => {
  t.equal((await app.request('/v1/crl/root')).status, 200);
  const served = appRootCrl(app);
  served.remove(t);
  const r = await app.request('/v1/crl/root');
  t.equal(r.status, 404);
  t.equal(r.body.error.code, 'NOT_FOUND');
});
