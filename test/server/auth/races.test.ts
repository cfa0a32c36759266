/**
 * Requests about one account that overlap, over real TLS on 127.0.0.1. Each of these read the
 * account, spent time in argon2 or signing, then wrote what it had decided on a state that had
 * changed meanwhile (found in review, each reproduced against the appliance first):
 * - a burst of login guesses all passed the lockout check before the first failure was counted;
 * - a password change or first login in flight undid an officer's reset;
 * - two revocations at once: one answered 500 and the CRL kept lacked the other;
 * - a certificate issued during a clearance change stayed active with the old clearance.
 * Where the overlap is a matter of timing, the test holds the slow step (argon2, signing) open
 * until the other request has finished, so the interleaving is the same on every run.
 */
import t from 'tap';
import { Crl, exportPrivateKeyPem } from '../../../pki/index.js';
import { envelopeReceiptStatement, loginStatement } from '../../../server/index.js';
import { signB64, startTestAppliance, type TestUser } from '../../helpers/appliance.js';
import { holdNext, reachesHold } from '../../helpers/hold.js';

const a = await startTestAppliance();
t.teardown(() => a.stop());

const as = (u: TestUser) => ({ cert: u.certPem, key: u.keyPem });

/** A login request prepared in full (challenge fetched, nonce signed) so many can leave at once. */
async function preparedLogin(u: TestUser, password: string): Promise<() => Promise<{ status: number; body: any }>> {
  const ch = await a.request('/v1/auth/challenge', { body: { login: u.login }, ...as(u) });
  const signature = await signB64(loginStatement(u.login, ch.body.nonce), u.cert, u.key);
  return () => a.request('/v1/auth/login', { body: { login: u.login, password, nonce: ch.body.nonce, signature }, ...as(u) });
}

t.test('when many logins for one account arrive at once then the lock holds after 5 failures', async (t) => {
  const dave = await a.createStaff({ login: 'dave', clearance: 'confidential' });
  const tries = [];
  for (let i = 0; i < 11; i++) tries.push(await preparedLogin(dave, `wrong-guess-${i}`));
  tries.push(await preparedLogin(dave, dave.password)); // the right one, last
  const answers = await Promise.all(tries.map((send) => send()));
  const codes = answers.map((r) => (r.status === 200 ? 'OK' : r.body.error.code));
  t.equal(codes.filter((c) => c === 'AUTH_FAILED').length, 5, `exactly 5 guesses were judged: ${codes.join(' ')}`);
  t.equal(codes.filter((c) => c === 'ACCOUNT_LOCKED').length, 7, 'the rest met the lock');
  t.not(codes.at(-1), 'OK', 'the right password in the burst does not get a session');
  const acct = await a.appliance.accounts.get('dave');
  t.equal(acct?.failedCount, 5, 'every judged failure was counted');
  t.ok(acct?.lockedUntil, 'the account is locked');
});

t.test('when an officer resets the password while a password change runs then the reset wins', async (t) => {
  const erin = await a.createStaff({ login: 'erin', clearance: 'restricted' });
  const hold = holdNext(t, a.appliance.hasher, 'hash');
  const change = a.request('/v1/auth/password', {
    token: erin.token,
    ...as(erin),
    body: { currentPassword: erin.password, newPassword: 'Lantern-harbour-2026' },
  });
  if (!(await reachesHold(t, hold, change, 'the password change'))) return; // it is hashing the new password
  const reset = await a.request('/v1/users/erin/reset', { method: 'POST', token: a.officer.token });
  t.equal(reset.status, 200);
  hold.release();
  const changed = await change;
  t.equal(changed.status, 409, 'the change answers a conflict');
  t.equal(changed.body.error.code, 'ACCOUNT_CHANGED');
  const newEnvelope = reset.body.envelope.password as string;
  t.equal((await (await preparedLogin(erin, 'Lantern-harbour-2026'))()).status, 401, 'the password the change chose does not work');
  const fresh = await (await preparedLogin(erin, newEnvelope))();
  t.equal(fresh.status, 200, 'the new envelope password works');
  t.equal(fresh.body.mustChangePassword, true, 'and must still be changed');
});

t.test('when an officer resets the envelope while a first login runs then the old receipt is not taken', async (t) => {
  const created = await a.request('/v1/users', {
    token: a.officer.token,
    body: { login: 'fran', fullName: 'Fran Doe', department: 'Ops', clearance: 'restricted', role: 'staff' },
  });
  t.equal(created.status, 201);
  // fran needs a certificate to log in before the first login: a PKCS#12 from the appliance.
  const p12 = await a.appliance.certificateService.issuePkcs12('fran', 'officer');
  const fran = { login: 'fran', cert: p12.certificate, key: p12.key, certPem: p12.certificate.pem, keyPem: await exportPrivateKeyPem(p12.key) };
  const first = await (await preparedLogin(fran as TestUser, created.body.envelope.password))();
  t.equal(first.status, 200);
  const oldSerial = first.body.envelopeSerial as string;
  const receipt = await signB64(envelopeReceiptStatement('fran', oldSerial), fran.cert, fran.key);
  const hold = holdNext(t, a.appliance.hasher, 'hash');
  const firstLogin = a.request('/v1/auth/first-login', {
    token: first.body.token,
    cert: fran.certPem,
    key: fran.keyPem,
    body: { newPassword: 'Copper-meadow-2026', receipt },
  });
  if (!(await reachesHold(t, hold, firstLogin, 'the first login'))) return;
  const reset = await a.request('/v1/users/fran/reset', { method: 'POST', token: a.officer.token });
  t.equal(reset.status, 200);
  hold.release();
  const answered = await firstLogin;
  t.equal(answered.status, 409);
  t.equal(answered.body.error.code, 'ACCOUNT_CHANGED');
  t.equal((await a.appliance.accounts.envelope(oldSerial))?.state, 'superseded', 'the old envelope is not marked used');
  t.equal((await a.appliance.accounts.pendingEnvelope('fran'))?.serial, reset.body.envelope.serial, 'the new envelope is the pending one');
  t.equal((await a.appliance.accounts.get('fran'))?.mustChangePassword, true);
});

t.test('when two certificates are revoked at once then both answer 200 and the last CRL lists both', async (t) => {
  const gail = await a.createStaff({ login: 'gail', clearance: 'restricted' });
  const hank = await a.createStaff({ login: 'hank', clearance: 'restricted' });
  const [r1, r2] = await Promise.all(
    [gail, hank].map((u) =>
      a.request(`/v1/certificates/${u.cert.serialNumber}/revoke`, { token: a.officer.token, body: { reason: 'keyCompromise' } }),
    ),
  );
  t.equal(r1!.status, 200, JSON.stringify(r1!.body));
  t.equal(r2!.status, 200, JSON.stringify(r2!.body));
  const crl = await a.request('/v1/crl', { token: a.officer.token });
  const listed = Crl.fromPem(crl.body.crl).revoked.map((r) => r.serialNumber.toLowerCase());
  t.ok(listed.includes(gail.cert.serialNumber.toLowerCase()), 'the CRL lists the first');
  t.ok(listed.includes(hank.cert.serialNumber.toLowerCase()), 'and the second');
});

t.test('when the clearance changes while a certificate is being made then the certificate is not recorded', async (t) => {
  const ivan = await a.createStaff({ login: 'ivan', clearance: 'secret' });
  const hold = holdNext(t, a.appliance.issuer, 'issueStaffCertificate');
  const issuing = a.request('/v1/users/ivan/certificates/p12', { token: a.officer.token, body: {} });
  if (!(await reachesHold(t, hold, issuing, 'the issuance'))) return;
  const lowered = await a.request('/v1/users/ivan/clearance', { token: a.officer.token, body: { clearance: 'restricted' } });
  t.equal(lowered.status, 200);
  hold.release();
  const issued = await issuing;
  t.equal(issued.status, 409, 'the issuance answers a conflict');
  t.equal(issued.body.error.code, 'ACCOUNT_CHANGED');
  const certs = await a.appliance.certificates.ofLogin('ivan');
  t.same(
    certs.filter((c) => c.status === 'active' && c.clearance === 'secret').map((c) => c.serial),
    [],
    'no active certificate carries the old clearance',
  );
  t.equal((await a.appliance.certificates.byFingerprint(ivan.cert.fingerprint))?.status, 'revoked', 'the one before is revoked (superseded)');
});
