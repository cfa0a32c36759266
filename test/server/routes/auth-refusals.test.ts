/**
 * Review defect: refused authentication reached only the access log, not the audit trail —
 * attempts on a locked login, refused nonces, a session token used over another certificate (a
 * stolen token) or after its session ended, and requests over a revoked certificate. Over real TLS;
 * only the appliance clock is faked (an offset from real time), set 1 s into a 10-minute refusal
 * window so that the test's requests share one.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { loginStatement, type StoredSecurityEvent } from '../../../server/index.js';
import { signB64, startTestAppliance, type TestUser } from '../../helpers/appliance.js';

const WINDOW = 10 * 60_000;
let offset = 0;
const now = () => new Date(Date.now() + offset);

const a = await startTestAppliance({ now });
t.teardown(() => a.stop());

const as = (u: TestUser) => ({ cert: u.certPem, key: u.keyPem });
async function login(loginName: string, password: string, u: TestUser) {
  const ch = await a.request('/v1/auth/challenge', { body: { login: loginName }, ...as(u) });
  const signature = await signB64(loginStatement(loginName, ch.body.nonce), u.cert, u.key);
  return a.request('/v1/auth/login', { body: { login: loginName, password, nonce: ch.body.nonce, signature }, ...as(u) });
}
const entries = async (type: string, f: (e: StoredSecurityEvent) => boolean = () => true) =>
  (await a.appliance.audit.list(type as StoredSecurityEvent['type'])).filter(f);
/** Ends the refusal window (clock + one window) and writes its summaries. */
async function endWindow(): Promise<void> {
  offset += WINDOW;
  await a.appliance.loginService.refusals.flush();
}

const alice = await a.createStaff({ login: 'alice', clearance: 'secret' });
const bob = await a.createStaff({ login: 'bob', clearance: 'secret' });
const dave = await a.createStaff({ login: 'dave', clearance: 'secret' });
const frank = await a.createStaff({ login: 'frank', clearance: 'secret' });
offset = Math.ceil(Date.now() / WINDOW) * WINDOW - Date.now() + 1_000;

t.test('when a locked login is tried again then login.refused: one entry at once, the repeats summed when the window ends', async (t) => {
  for (let i = 0; i < 5; i++) await login('dave', `wrong-${i}`, dave);
  for (let i = 0; i < 3; i++) t.equal((await login('dave', dave.password, dave)).body.error?.code, 'ACCOUNT_LOCKED');
  const first = await entries('login.refused', (e) => e.subject === 'dave');
  t.equal(first.length, 1);
  t.match(first[0], { actor: 'dave', detail: { reason: 'locked', count: 1, certificate: dave.cert.serialNumber, peer: '127.0.0.1' } });

  for (let i = 0; i < 6; i++) await login('ghost', `wrong-${i}`, dave);
  const ghost = await entries('login.refused', (e) => e.detail?.reason === 'locked' && e.subject !== 'dave');
  t.equal(ghost.length, 1, 'an unknown locked login too');
  t.match(ghost[0]?.subject, /^login-hmac:[0-9a-f]{64}$/, 'named by its keyed hash, not in clear');

  await endWindow();
  const all = await entries('login.refused', (e) => e.subject === 'dave');
  t.equal(all.length, 2);
  t.match(all[1], { actor: 'dave', detail: { reason: 'locked', count: 2 } }, 'the two repeats in one summary');
});

t.test('when a nonce is replayed then login.refused nonce-unknown', async (t) => {
  const ch = await a.request('/v1/auth/challenge', { body: { login: 'alice' }, ...as(alice) });
  const signature = await signB64(loginStatement('alice', ch.body.nonce), alice.cert, alice.key);
  const body = { login: 'alice', password: alice.password, nonce: ch.body.nonce, signature };
  t.equal((await a.request('/v1/auth/login', { body, ...as(alice) })).status, 200);
  t.equal((await a.request('/v1/auth/login', { body, ...as(alice) })).body.error?.code, 'NONCE_INVALID');
  // A used nonce is forgotten (nonce-store.ts): its replay is refused as an unknown one.
  t.match(await entries('login.refused', (e) => e.subject === 'alice'), [{ actor: 'alice', detail: { reason: 'nonce-unknown', count: 1 } }]);
});

t.test("when a token is presented over another certificate then session.refused names both the thief's and the victim's", async (t) => {
  const token = await a.loginAs('alice', alice.password, alice.cert, alice.key);
  const r = await a.request('/v1/me', { token, ...as(bob) });
  t.equal(r.body.error?.code, 'SESSION_INVALID', 'the answer is unchanged');
  const e = await entries('session.refused', (x) => x.detail?.reason === 'other-certificate');
  t.equal(e.length, 1);
  t.match(e[0], {
    actor: 'bob',
    subject: 'alice',
    detail: { certificate: bob.cert.serialNumber, sessionCertificate: alice.cert.serialNumber, count: 1 },
  });
  t.notOk(JSON.stringify(await a.appliance.audit.list()).includes(token), 'no token in the trail');
});

t.test('when the token of a logged-out session is used again then session.refused ended', async (t) => {
  const token = await a.loginAs('bob', bob.password, bob.cert, bob.key);
  t.equal((await a.request('/v1/auth/logout', { method: 'POST', token, ...as(bob) })).status, 200);
  t.equal((await a.request('/v1/me', { token, ...as(bob) })).body.error?.code, 'SESSION_INVALID');
  t.match(await entries('session.refused', (x) => x.detail?.reason === 'ended'), [
    { actor: 'bob', subject: 'bob', detail: { endReason: 'logout', count: 1 } },
  ]);
});

t.test('when a revoked certificate tries a challenge and a login then certificate.refused', async (t) => {
  const rv = await a.request(`/v1/certificates/${frank.cert.serialNumber}/revoke`, { token: a.officer.token, body: { reason: 'keyCompromise' } });
  t.equal(rv.status, 200);
  const ch = await a.request('/v1/auth/challenge', { body: { login: 'frank' }, ...as(frank) });
  t.equal(ch.body.error?.code, 'CERT_REVOKED');
  const lg = await a.request('/v1/auth/login', { body: { login: 'frank', password: frank.password, nonce: 'A'.repeat(43), signature: 'AAAA' }, ...as(frank) });
  t.equal(lg.body.error?.code, 'CERT_REVOKED', 'the answers are unchanged');
  const e = await entries('certificate.refused');
  t.equal(e.length, 1, 'the first in the trail at once');
  t.match(e[0], { actor: 'frank', detail: { reason: 'revoked', certificate: frank.cert.serialNumber, count: 1 } });
  await endWindow();
  t.same((await entries('certificate.refused')).map((x) => x.detail?.count), [1, 1], 'the second one summed at the window end');
});

t.test('when a client floods logins with random names and nonces then the trail grows by a bounded number of entries', async (t) => {
  const before = (await entries('login.refused')).length;
  const n = 150;
  const codes = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await a.request('/v1/auth/login', {
      body: { login: `x${randomBytes(6).toString('hex')}`, password: 'p', nonce: randomBytes(32).toString('base64url'), signature: 'AAAA' },
      ...as(bob),
    });
    codes.add(r.body.error?.code);
  }
  t.same([...codes], ['NONCE_INVALID']);
  const during = (await entries('login.refused')).slice(before);
  t.equal(during.length, 65, `64 logins kept apart, then one overflow entry for the other ${n - 64}`);
  await endWindow();
  const all = (await entries('login.refused')).slice(before);
  t.equal(all.reduce((s, e) => s + Number(e.detail?.count), 0), n, 'the counts add up to every refusal');
  t.ok(all.length <= 2 * (64 + 15), `${all.length} entries in all`);
});

t.test('when refusals were recorded then the trail holds no password, token or nonce', async (t) => {
  const trail = JSON.stringify(await a.appliance.audit.list());
  for (const secret of [alice.password, bob.password, dave.password, frank.password, a.officer.token]) t.notOk(trail.includes(secret));
  t.notOk(trail.includes('"ghost"'));
});
