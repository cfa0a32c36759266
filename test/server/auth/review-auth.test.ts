/**
 * Review of authentication and accounts (branch review-auth), over real TLS on 127.0.0.1. Each
 * test reproduces a defect found in review; where the overlap is a matter of timing, one step is
 * held open until the other request has finished, so the interleaving is the same on every run.
 */
import t from 'tap';
import { Certificate } from '../../../pki/index.js';
import { envelopeReceiptStatement, loginStatement } from '../../../server/index.js';
import { newKeyAndCsr, signB64, startTestAppliance, type TestUser } from '../../helpers/appliance.js';
import { holdNext, reachesHold } from '../../helpers/hold.js';

const a = await startTestAppliance();
t.teardown(() => a.stop());

const as = (u: TestUser) => ({ cert: u.certPem, key: u.keyPem });
const officer = () => ({ token: a.officer.token });

t.test('when an officer resets an account that another officer deletes meanwhile then ACCOUNT_NOT_FOUND, no 500 and no envelope left', async (t) => {
  const created = await a.request('/v1/users', {
    ...officer(),
    body: { login: 'gone', fullName: 'Gone Soon', department: 'Operations', clearance: 'restricted', role: 'staff' },
  });
  t.equal(created.status, 201);
  // The reset hashes its new envelope password before its transaction: the delete lands then.
  const hold = holdNext(t, a.appliance.hasher, 'hash');
  const reset = a.request('/v1/users/gone/reset', { method: 'POST', ...officer() });
  if (!(await reachesHold(t, hold, reset, 'the reset'))) return;
  const deleted = await a.request('/v1/users/gone', { method: 'DELETE', ...officer() });
  t.equal(deleted.status, 200, 'the delete went through');
  hold.release();
  const r = await reset;
  t.equal(r.status, 404, `the reset answers 404 (got ${r.status})`);
  t.equal(r.body.error?.code, 'ACCOUNT_NOT_FOUND');
  t.equal(await a.appliance.accounts.pendingEnvelope('gone'), undefined, 'no envelope of the deleted login');
  t.same(
    (await a.appliance.audit.list('account.reset')).filter((e) => e.subject === 'gone'),
    [],
    'no account.reset entry for an account that is gone',
  );
});

t.test('when an officer disables the account or revokes the certificate during a password change then the change is refused and nothing is written', async (t) => {
  for (const [login, what] of [
    ['pat', 'disable'],
    ['ray', 'revoke'],
  ] as const) {
    const u = await a.createStaff({ login, clearance: 'restricted' });
    const before = (await a.appliance.accounts.get(login))!.passwordHash;
    // The change hashes the new password before its transaction: the officer acts then.
    const hold = holdNext(t, a.appliance.hasher, 'hash');
    const change = a.request('/v1/auth/password', {
      token: u.token,
      ...as(u),
      body: { currentPassword: u.password, newPassword: 'Another-long-passphrase-9' },
    });
    if (!(await reachesHold(t, hold, change, `the password change of ${login}`))) return;
    const done =
      what === 'disable'
        ? await a.request(`/v1/users/${login}/disable`, { method: 'POST', ...officer() })
        : await a.request(`/v1/certificates/${u.cert.serialNumber}/revoke`, { ...officer(), body: { reason: 'keyCompromise' } });
    t.equal(done.status, 200, `the ${what} went through`);
    hold.release();
    const r = await change;
    t.equal(r.status, 409, `${what}: the change of a session the officer ended is refused (${r.status})`);
    t.equal(r.body.error?.code, 'ACCOUNT_CHANGED');
    t.equal((await a.appliance.accounts.get(login))!.passwordHash, before, `${what}: the password is the one before`);
    t.same(
      (await a.appliance.audit.list('password.changed')).filter((e) => e.subject === login && e.detail?.first === false),
      [],
      `${what}: no password.changed entry`,
    );
  }
});

t.test('when an officer revokes the certificate during a first login then the envelope stays pending and no receipt of it is kept', async (t) => {
  const created = await a.request('/v1/users', {
    ...officer(),
    body: { login: 'sam', fullName: 'Sam Fresh', department: 'Operations', clearance: 'restricted', role: 'staff' },
  });
  t.equal(created.status, 201);
  const { keyPair, csrPem } = await newKeyAndCsr(a.appliance.meta.profile, 'sam');
  const issued = await a.request('/v1/users/sam/certificates', { ...officer(), body: { csr: csrPem } });
  t.equal(issued.status, 201);
  const cert = Certificate.fromPem(issued.body.certificate);
  const tls = { cert: cert.pem, key: keyPair.privateKey };
  const ch = await a.request('/v1/auth/challenge', { body: { login: 'sam' }, ...tls });
  const signature = await signB64(loginStatement('sam', ch.body.nonce), cert, keyPair.privateKey);
  const login = await a.request('/v1/auth/login', {
    body: { login: 'sam', password: created.body.envelope.password, nonce: ch.body.nonce, signature },
    ...tls,
  });
  t.equal(login.status, 200, 'the envelope password logs in');
  const receipt = await signB64(envelopeReceiptStatement('sam', login.body.envelopeSerial), cert, keyPair.privateKey);

  const hold = holdNext(t, a.appliance.hasher, 'hash');
  const first = a.request('/v1/auth/first-login', { token: login.body.token, ...tls, body: { newPassword: 'Granite-lantern-2026', receipt } });
  if (!(await reachesHold(t, hold, first, 'the first login'))) return;
  const revoked = await a.request(`/v1/certificates/${cert.serialNumber}/revoke`, { ...officer(), body: { reason: 'keyCompromise' } });
  t.equal(revoked.status, 200, 'the revocation went through');
  hold.release();
  const r = await first;
  t.equal(r.status, 409, `the first login of a session the revocation ended is refused (got ${r.status})`);
  t.equal(r.body.error?.code, 'ACCOUNT_CHANGED');
  const env = await a.appliance.accounts.envelope(login.body.envelopeSerial);
  t.equal(env?.state, 'pending', 'the envelope is still pending');
  t.equal(env?.receipt, null, 'no receipt signed by the revoked certificate is kept');
  t.equal((await a.appliance.accounts.get('sam'))!.mustChangePassword, true, 'the envelope password still has to be replaced');
});

t.test('when the new password at the first login is the envelope password in capitals or without its dashes then PASSWORD_WEAK', async (t) => {
  const created = await a.request('/v1/users', {
    ...officer(),
    body: { login: 'tia', fullName: 'Tia Fresh', department: 'Operations', clearance: 'restricted', role: 'staff' },
  });
  t.equal(created.status, 201);
  const envelopePassword: string = created.body.envelope.password;
  const { keyPair, csrPem } = await newKeyAndCsr(a.appliance.meta.profile, 'tia');
  const issued = await a.request('/v1/users/tia/certificates', { ...officer(), body: { csr: csrPem } });
  const cert = Certificate.fromPem(issued.body.certificate);
  const tls = { cert: cert.pem, key: keyPair.privateKey };
  const ch = await a.request('/v1/auth/challenge', { body: { login: 'tia' }, ...tls });
  const signature = await signB64(loginStatement('tia', ch.body.nonce), cert, keyPair.privateKey);
  const login = await a.request('/v1/auth/login', { body: { login: 'tia', password: envelopePassword, nonce: ch.body.nonce, signature }, ...tls });
  t.equal(login.status, 200, 'the envelope password logs in');
  const receipt = await signB64(envelopeReceiptStatement('tia', login.body.envelopeSerial), cert, keyPair.privateKey);
  // What anyone who read the printed envelope would try first.
  for (const variant of [envelopePassword.toUpperCase(), envelopePassword.replaceAll('-', ''), envelopePassword.replaceAll('-', ' ')]) {
    const r = await a.request('/v1/auth/first-login', { token: login.body.token, ...tls, body: { newPassword: variant, receipt } });
    t.equal(r.status, 400, `the envelope password written as ${variant.replace(/[a-z0-9]/gi, 'x')} is refused (got ${r.status})`);
    t.equal(r.body.error?.code, 'PASSWORD_WEAK');
  }
  t.equal((await a.appliance.accounts.get('tia'))!.mustChangePassword, true, 'the envelope password still has to be replaced');
  const ok = await a.request('/v1/auth/first-login', { token: login.body.token, ...tls, body: { newPassword: 'Granite-lantern-2026', receipt } });
  t.equal(ok.status, 200, 'a password of its own is taken');
});
