/**
 * `POST /v1/certificates/:serial/revoke` against review defects 3, 4 and 5, over real TLS with a
 * real appliance (real SQLite); only the appliance clock is faked.
 *
 * 3 — the revocation time was stored with milliseconds but written to the CRL truncated down, so a
 *     message received at .579 looked revoked by a revocation requested at .823 of the same second.
 * 4 — concurrent revocations of one serial all answered 200 and overwrote each other's reason.
 * 5 — the only officer could revoke their own last certificate (or disable their own account),
 *     leaving nobody to run the CA.
 */
import t from 'tap';
import { Crl, validateCertificate } from '../../../pki/index.js';
import { startTestAppliance, type TestUser } from '../../helpers/appliance.js';

/** Real time, or a pinned instant (sub-second exact). */
let pinned: number | undefined;
const now = (): Date => new Date(pinned ?? Date.now());

const a = await startTestAppliance({ profile: 'p256', now });
t.teardown(() => a.stop());
let officer = { token: a.officer.token, cert: a.officer.certPem, key: a.officer.keyPem };

const crlNow = async () => {
  const r = await a.request('/v1/crl', officer);
  return { number: r.body.crlNumber as number, crl: Crl.fromPem(r.body.crl) };
};
const trust = () => ({ trustAnchors: [a.appliance.rootCert], intermediates: [a.appliance.issuingCert] });

t.test('review defect 3: when a revocation is requested at .823 then it is recorded at the next whole second everywhere', async (t) => {
  const rina = await a.createStaff({ login: 'rina', clearance: 'secret' });
  const second = (Math.floor(Date.now() / 1000) + 2) * 1000; // a whole second just ahead of real time
  const receivedAt = new Date(second + 579); // a message accepted before the revocation
  pinned = second + 823;
  t.teardown(() => void (pinned = undefined));
  const r = await a.request(`/v1/certificates/${rina.cert.serialNumber}/revoke`, { ...officer, body: { reason: 'keyCompromise' } });
  t.equal(r.status, 200, JSON.stringify(r.body));
  const recorded = new Date(second + 1000).toISOString();
  t.equal(r.body.revokedAt, recorded, 'the API answer: rounded up to the next whole second');
  t.equal((await a.appliance.certificates.get(rina.cert.serialNumber))?.revokedAt?.toISOString(), recorded, 'the database');
  const list = await a.request('/v1/users/rina/certificates', officer);
  t.equal(list.body.certificates[0].revokedAt, recorded, 'the listing');
  const { crl } = await crlNow();
  t.equal(crl.find(rina.cert.serialNumber)?.revocationDate.toISOString(), recorded, 'the CRL entry');

  // A reader checking the message accepted at .579 against that CRL: signed before the revocation.
  const before = await validateCertificate(rina.cert, { ...trust(), crls: [crl], at: receivedAt, usage: 'signature' });
  t.ok(before.ok, before.ok ? 'valid at its receipt time' : before.detail);
  t.ok(before.ok && before.revokedLater, 'and marked revoked later');
  const after = await validateCertificate(rina.cert, { ...trust(), crls: [crl], at: new Date(second + 1000), usage: 'signature' });
  t.match(after, { ok: false, reason: 'revoked' }, 'revoked from the recorded time on');

  // No window opens: at the very instant of the request (still .823) the certificate is refused,
  // because requests, login and sending check its status, not the recorded time.
  const refused = await a.request('/v1/me', { token: rina.token, cert: rina.certPem, key: rina.keyPem });
  t.equal(refused.status, 401);
  t.equal(refused.body.error.code, 'CERT_REVOKED');
  const challenge = await a.request('/v1/auth/challenge', { body: { login: 'rina' }, cert: rina.certPem, key: rina.keyPem });
  t.equal(challenge.body.error?.code, 'CERT_REVOKED', 'nor can it start a login');
});

t.test('review defect 4: when six officers revoke one certificate at once then one wins, five get 409, one CRL is published', async (t) => {
  const sami = await a.createStaff({ login: 'sami', clearance: 'restricted' });
  const before = await crlNow();
  const reasons = ['keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', 'privilegeWithdrawn'];
  const answers = await Promise.all(
    reasons.map((reason) => a.request(`/v1/certificates/${sami.cert.serialNumber}/revoke`, { ...officer, body: { reason } })),
  );
  const won = answers.filter((r) => r.status === 200);
  const lost = answers.filter((r) => r.status !== 200);
  t.equal(won.length, 1, `statuses ${answers.map((r) => r.status).join(',')}`);
  t.equal(lost.length, 5);
  t.ok(lost.every((r) => r.status === 409 && r.body.error.code === 'CERTIFICATE_ALREADY_REVOKED'), 'the others: 409 CERTIFICATE_ALREADY_REVOKED');
  const winner = won[0]!.body.reason as string;
  t.equal((await a.appliance.certificates.get(sami.cert.serialNumber))?.reason, winner, "the winner's reason stays");
  const after = await crlNow();
  t.equal(after.number, before.number + 1, 'exactly one CRL published');
  t.equal(after.crl.find(sami.cert.serialNumber)?.reason, winner);
  const events = (await a.appliance.audit.list('certificate.revoked')).filter((e) => e.detail?.serial === sami.cert.serialNumber);
  t.equal(events.length, 1, 'one certificate.revoked audit entry');
});

t.test('review defect 5: the last active officer cannot revoke their last certificate', async (t) => {
  const serial = a.officer.cert.serialNumber;
  const before = await crlNow();

  t.test('when the only officer revokes their own certificate then 409 LAST_OFFICER_CERTIFICATE and nothing changes', async (t) => {
    const r = await a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason: 'keyCompromise' } });
    t.equal(r.status, 409);
    t.equal(r.body.error.code, 'LAST_OFFICER_CERTIFICATE');
    t.match(r.body.error.message, /last active certificate of the last active officer/);
    t.equal((await a.appliance.certificates.get(serial))?.status, 'active');
    t.equal((await crlNow()).number, before.number, 'no CRL published');
    t.equal((await a.request('/v1/me', officer)).status, 200, 'the session still works');
  });

  t.test('when the only officer changes their own clearance (which revokes their certificates) then 409 and nothing changes', async (t) => {
    const r = await a.request(`/v1/users/${a.officer.login}/clearance`, { ...officer, body: { clearance: 'secret' } });
    t.equal(r.status, 409);
    t.equal(r.body.error.code, 'LAST_OFFICER_CERTIFICATE');
    t.equal((await a.appliance.accounts.get(a.officer.login))?.clearance, 'top-secret', 'the clearance change was rolled back');
    t.equal((await a.appliance.certificates.get(serial))?.status, 'active');
  });

  t.test('when the only officer disables their own account then 409 LAST_OFFICER_CERTIFICATE and the account stays active', async (t) => {
    const r = await a.request(`/v1/users/${a.officer.login}/disable`, { ...officer, method: 'POST' });
    t.equal(r.status, 409, JSON.stringify(r.body));
    t.equal(r.body.error.code, 'LAST_OFFICER_CERTIFICATE');
    t.equal((await a.appliance.accounts.get(a.officer.login))?.status, 'active', 'rolled back');
    t.equal((await a.request('/v1/me', officer)).status, 200, 'the session still works');
  });

  let otto: TestUser;
  t.test('when the only other officer is disabled then the first still cannot revoke their last certificate', async (t) => {
    otto = await a.createStaff({ login: 'otto', clearance: 'top-secret', role: 'officer' });
    t.equal((await a.request('/v1/users/otto/disable', { ...officer, method: 'POST' })).status, 200);
    const r = await a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason: 'superseded' } });
    t.equal(r.body.error?.code, 'LAST_OFFICER_CERTIFICATE');
  });

  t.test('when another active officer holds a certificate then the first officer’s can be revoked, and then not the other’s', async (t) => {
    t.equal((await a.request('/v1/users/otto/enable', { ...officer, method: 'POST' })).status, 200);
    const r = await a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason: 'superseded' } });
    t.equal(r.status, 200, JSON.stringify(r.body));
    officer = { token: await a.loginAs('otto', otto.password, otto.cert, otto.key), cert: otto.certPem, key: otto.keyPem };
    const own = await a.request(`/v1/certificates/${otto.cert.serialNumber}/revoke`, { ...officer, body: { reason: 'superseded' } });
    t.equal(own.status, 409);
    t.equal(own.body.error.code, 'LAST_OFFICER_CERTIFICATE', 'otto is now the last officer');
  });
});
