import t from 'tap';
import { Certificate } from '../../../pki/index.js';
import { loginStatement } from '../../../server/index.js';
import { signB64, startTestAppliance } from '../../helpers/appliance.js';

t.test('login flow over real TLS', async (t) => {
  const a = await startTestAppliance();
  t.teardown(() => a.stop());

  t.test('when the officer has done the first login then /v1/me shows an active officer', async (t) => {
    const r = await a.request('/v1/me', { token: a.officer.token });
    t.equal(r.status, 200);
    t.equal(r.body.login, 'officer');
    t.equal(r.body.role, 'officer');
    t.equal(r.body.status, 'active');
    t.equal(r.body.certificate.serial, a.officer.cert.serialNumber);
  });

  t.test('when a staff user is created and logs in then the session works', async (t) => {
    const u = await a.createStaff({ login: 'alice', clearance: 'secret' });
    const me = await a.request('/v1/me', { token: u.token, cert: u.certPem, key: u.keyPem });
    t.equal(me.status, 200);
    t.equal(me.body.clearance, 'secret');
    const token = await a.loginAs('alice', u.password, u.cert, u.key);
    t.ok(token.length > 20);
  });

  t.test('when the nonce is replayed then NONCE_INVALID', async (t) => {
    const ch = await a.request('/v1/auth/challenge', { body: { login: 'officer' } });
    const signature = await signB64(loginStatement('officer', ch.body.nonce), a.officer.cert, a.officer.key);
    const body = { login: 'officer', password: a.officer.password, nonce: ch.body.nonce, signature };
    const first = await a.request('/v1/auth/login', { body });
    t.equal(first.status, 200);
    const again = await a.request('/v1/auth/login', { body });
    t.equal(again.status, 401);
    t.equal(again.body.error.code, 'NONCE_INVALID');
    t.type(again.body.error.requestId, 'string');
  });
  void Certificate;
});
