/**
 * "No input reaches a 500": random JSON bodies and path parameters against every route of the
 * Auth and Officer sections, over real TLS, as an officer session. Also: TLS below 1.3 is refused.
 */
import https from 'node:https';
import fc from 'fast-check';
import t from 'tap';
import { startTestAppliance } from '../../helpers/appliance.js';

const a = await startTestAppliance();
t.teardown(() => a.stop());
const staff = await a.createStaff({ login: 'fuzzy', clearance: 'secret' });

const routes: { method: string; path: (p: string) => string; session: 'officer' | 'none' }[] = [
  { method: 'POST', path: () => '/v1/auth/challenge', session: 'none' },
  { method: 'POST', path: () => '/v1/auth/login', session: 'none' },
  { method: 'POST', path: () => '/v1/auth/first-login', session: 'officer' },
  { method: 'POST', path: () => '/v1/auth/password', session: 'officer' },
  { method: 'POST', path: () => '/v1/users', session: 'officer' },
  { method: 'GET', path: (p) => `/v1/users/${p}`, session: 'officer' },
  { method: 'POST', path: (p) => `/v1/users/${p}/clearance`, session: 'officer' },
  { method: 'POST', path: (p) => `/v1/users/${p}/certificates`, session: 'officer' },
  { method: 'POST', path: (p) => `/v1/users/${p}/certificates/p12`, session: 'officer' },
  { method: 'POST', path: (p) => `/v1/certificates/${p}/revoke`, session: 'officer' },
];

const jsonish = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.record({
    login: fc.oneof(fc.string(), fc.constant('fuzzy'), fc.constant('officer')),
    password: fc.string(),
    nonce: fc.string(),
    signature: fc.base64String(),
    newPassword: fc.string(),
    receipt: fc.base64String(),
    csr: fc.oneof(fc.string(), fc.constant('-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n')),
    clearance: fc.constantFrom('secret', 'top-secret', 'cosmic', ''),
    role: fc.constantFrom('staff', 'officer', 'god'),
    reason: fc.constantFrom('keyCompromise', 'nope'),
    fullName: fc.string(),
    department: fc.string(),
  }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.string(),
);
const param = fc.oneof(fc.constant('fuzzy'), fc.constant('nobody'), fc.stringMatching(/^[a-zA-Z0-9%._:-]{1,40}$/), fc.stringMatching(/^[0-9a-f]{1,40}$/));

t.test('when random bodies and parameters hit every route then no answer is a 5xx and every error has the error shape', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes), jsonish, param, async (route, body, p) => {
      const r = await a.request(route.path(encodeURIComponent(p).replace(/%25/g, '%')), {
        method: route.method,
        ...(route.method === 'POST' ? { rawBody: body } : {}),
        ...(route.session === 'officer' ? { token: a.officer.token } : {}),
      });
      if (r.status >= 500) throw new Error(`${route.method} ${route.path(p)} ${body.slice(0, 200)} → ${r.status} ${JSON.stringify(r.body)}`);
      if (r.status >= 400 && (typeof r.body !== 'object' || typeof r.body.error?.code !== 'string' || typeof r.body.error?.requestId !== 'string'))
        throw new Error(`error without the error shape: ${JSON.stringify(r.body)}`);
    }),
    { numRuns: 150 },
  );
  // The officer still works afterwards (random input never matched the current password).
  t.equal((await a.request('/v1/me', { token: a.officer.token })).status, 200);
  void staff;
});

t.test('when a client offers at most TLS 1.2 then the handshake fails', async (t) => {
  const attempt = new Promise<number>((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: a.port, path: '/v1/health', ca: a.caPem, cert: a.officer.certPem, key: a.officer.keyPem, agent: false, maxVersion: 'TLSv1.2' },
      (res) => resolve(res.statusCode ?? 0),
    );
    req.on('error', reject);
    req.end();
  });
  await t.rejects(attempt, /protocol version|alert|ECONNRESET|unsupported/i);
});
