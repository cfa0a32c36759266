/**
 * Login, sessions, lockout and the per-request certificate checks, over real TLS on 127.0.0.1.
 * Only the appliance clock is faked (an offset from real time), so TLS itself runs on real time.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exportPrivateKeyPem, type Certificate, type CryptoKey } from '../../../pki/index.js';
import { envelopeReceiptStatement, loginStatement } from '../../../server/index.js';
import { signB64, startTestAppliance, type TestUser } from '../../helpers/appliance.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
let offset = 0;
const now = () => new Date(Date.now() + offset);

const a = await startTestAppliance({ now, captureLogs: true });
t.teardown(() => a.stop());

/** Challenge + login where the TLS identity and the signer can differ. */
async function login(
  loginName: string,
  password: string,
  tls: { cert: Certificate; key: CryptoKey },
  signer: { cert: Certificate; key: CryptoKey } = tls,
) {
  const keyPem = await exportPrivateKeyPem(tls.key);
  const ch = await a.request('/v1/auth/challenge', { body: { login: loginName }, cert: tls.cert.pem, key: keyPem });
  const signature = await signB64(loginStatement(loginName, ch.body.nonce), signer.cert, signer.key);
  return a.request('/v1/auth/login', {
    body: { login: loginName, password, nonce: ch.body.nonce, signature },
    cert: tls.cert.pem,
    key: keyPem,
  });
}

const as = (u: TestUser) => ({ cert: u.certPem, key: u.keyPem });
const alice = await a.createStaff({ login: 'alice', clearance: 'secret' });
const bob = await a.createStaff({ login: 'bob', clearance: 'restricted' });

t.test('when the officer has done the first login then /v1/me shows an active officer with its certificate', async (t) => {
  const r = await a.request('/v1/me', { token: a.officer.token });
  t.equal(r.status, 200);
  t.match(r.body, { login: 'officer', role: 'officer', status: 'active', certificate: { serial: a.officer.cert.serialNumber } });
});

t.test('when a staff user logs in with password and key then a session token works for /v1/me', async (t) => {
  const r = await login('alice', alice.password, alice);
  t.equal(r.status, 200);
  t.equal(r.body.mustChangePassword, false);
  t.notOk('envelopeSerial' in r.body);
  const me = await a.request('/v1/me', { token: r.body.token, ...as(alice) });
  t.equal(me.status, 200);
  t.equal(me.body.clearance, 'secret');
  t.equal(me.body.mustChangePassword, false);
});

t.test('when no client certificate is presented then the TLS handshake is refused', async (t) => {
  await t.rejects(a.request('/v1/health', { cert: null, key: null }));
});

t.test('when the client certificate comes from a foreign CA then the TLS handshake is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sigil-foreign-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-subj', '/CN=alice',
    '-days', '2', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'),
  ], { stdio: 'ignore' });
  await t.rejects(
    a.request('/v1/health', { cert: readFileSync(join(dir, 'c.pem'), 'utf8'), key: readFileSync(join(dir, 'k.pem'), 'utf8') }),
  );
});

t.test('when the server clock is past the certificate notAfter then CERT_EXPIRED while TLS still accepts', async (t) => {
  offset = 400 * DAY;
  t.teardown(() => void (offset = 0));
  const r = await a.request('/v1/health');
  t.equal(r.status, 401);
  t.equal(r.body.error.code, 'CERT_EXPIRED');
});

t.test('when the server clock is before the certificate notBefore then CERT_NOT_YET_VALID', async (t) => {
  offset = -DAY;
  t.teardown(() => void (offset = 0));
  const r = await a.request('/v1/health');
  t.equal(r.status, 401);
  t.equal(r.body.error.code, 'CERT_NOT_YET_VALID');
});

t.test('when the password is wrong or the login unknown then both answer AUTH_FAILED with the same message', async (t) => {
  const wrong = await login('alice', 'not the password', alice);
  const unknown = await login('nobody', 'whatever-password', alice);
  t.equal(wrong.status, 401);
  t.equal(unknown.status, 401);
  t.equal(wrong.body.error.code, 'AUTH_FAILED');
  t.equal(unknown.body.error.code, 'AUTH_FAILED');
  t.equal(wrong.body.error.message, unknown.body.error.message);
  const ok = await login('alice', alice.password, alice); // reset alice's failure counter
  t.equal(ok.status, 200);
});

t.test('when the nonce is signed by another key then AUTH_FAILED', async (t) => {
  const r = await login('alice', alice.password, alice, bob);
  t.equal(r.status, 401);
  t.equal(r.body.error.code, 'AUTH_FAILED');
  const events = await a.appliance.audit.list('login.failed');
  t.equal(events.at(-1)?.detail?.reason, 'bad-signature');
  t.equal((await login('alice', alice.password, alice)).status, 200);
});

t.test('when the certificate belongs to another account then AUTH_FAILED', async (t) => {
  // bob's certificate and key, alice's login and password
  const r = await login('alice', alice.password, bob);
  t.equal(r.status, 401);
  t.equal(r.body.error.code, 'AUTH_FAILED');
  const events = await a.appliance.audit.list('login.failed');
  t.equal(events.at(-1)?.detail?.reason, 'certificate-not-of-account');
  t.equal((await login('alice', alice.password, alice)).status, 200);
  // With a wrong password the answer is the same, and the trail says the password was wrong: the
  // signature and the certificate are checked either way (login-service.ts), so that how long the
  // answer takes does not tell bob whether a password he guessed for alice was right.
  const guess = await login('alice', 'not-alices-password', bob);
  t.equal(guess.status, 401);
  t.equal(guess.body.error.code, 'AUTH_FAILED');
  t.equal((await a.appliance.audit.list('login.failed')).at(-1)?.detail?.reason, 'wrong-password');
  t.equal((await login('alice', alice.password, alice)).status, 200);
});

t.test('when the nonce is replayed then NONCE_INVALID', async (t) => {
  const keyPem = alice.keyPem;
  const ch = await a.request('/v1/auth/challenge', { body: { login: 'alice' }, cert: alice.certPem, key: keyPem });
  const signature = await signB64(loginStatement('alice', ch.body.nonce), alice.cert, alice.key);
  const body = { login: 'alice', password: alice.password, nonce: ch.body.nonce, signature };
  t.equal((await a.request('/v1/auth/login', { body, ...as(alice) })).status, 200);
  const again = await a.request('/v1/auth/login', { body, ...as(alice) });
  t.equal(again.status, 401);
  t.equal(again.body.error.code, 'NONCE_INVALID');
});

t.test('when the nonce was issued over another certificate then NONCE_INVALID', async (t) => {
  const ch = await a.request('/v1/auth/challenge', { body: { login: 'alice' }, ...as(bob) });
  const signature = await signB64(loginStatement('alice', ch.body.nonce), alice.cert, alice.key);
  const r = await a.request('/v1/auth/login', {
    body: { login: 'alice', password: alice.password, nonce: ch.body.nonce, signature },
    ...as(alice),
  });
  t.equal(r.body.error.code, 'NONCE_INVALID');
});

t.test('when the nonce is older than its TTL then NONCE_INVALID', async (t) => {
  const ch = await a.request('/v1/auth/challenge', { body: { login: 'alice' }, ...as(alice) });
  offset = 2 * MIN;
  t.teardown(() => void (offset = 0));
  const signature = await signB64(loginStatement('alice', ch.body.nonce), alice.cert, alice.key);
  const r = await a.request('/v1/auth/login', {
    body: { login: 'alice', password: alice.password, nonce: ch.body.nonce, signature },
    ...as(alice),
  });
  t.equal(r.body.error.code, 'NONCE_INVALID');
});

t.test('lockout', async (t) => {
  const dave = await a.createStaff({ login: 'dave', clearance: 'confidential' });

  t.test('when 5 logins fail then the 6th answers ACCOUNT_LOCKED even with the right password', async (t) => {
    for (let i = 0; i < 5; i++) t.equal((await login('dave', `wrong-${i}`, dave)).body.error.code, 'AUTH_FAILED');
    const r = await login('dave', dave.password, dave);
    t.equal(r.status, 423);
    t.equal(r.body.error.code, 'ACCOUNT_LOCKED');
    t.equal((await a.appliance.audit.list('login.locked')).at(-1)?.subject, 'dave');
    const view = await a.request('/v1/users/dave', { token: a.officer.token });
    t.equal(view.body.status, 'locked');
  });

  t.test('when an officer unlocks the account then the right password works again', async (t) => {
    const u = await a.request('/v1/users/dave/unlock', { method: 'POST', token: a.officer.token });
    t.equal(u.status, 200);
    t.equal(u.body.status, 'active');
    t.equal((await login('dave', dave.password, dave)).status, 200);
  });

  t.test('when the lock delay passes then the account opens by itself', async (t) => {
    for (let i = 0; i < 5; i++) await login('dave', `wrong-${i}`, dave);
    t.equal((await login('dave', dave.password, dave)).status, 423);
    offset = 31 * MIN;
    t.teardown(() => void (offset = 0));
    t.equal((await login('dave', dave.password, dave)).status, 200);
  });

  t.test('when failures are spread over more than 15 minutes then they do not lock', async (t) => {
    for (let i = 0; i < 4; i++) await login('dave', `wrong-${i}`, dave);
    offset = 16 * MIN;
    t.teardown(() => void (offset = 0));
    await login('dave', 'wrong-again', dave);
    t.equal((await login('dave', dave.password, dave)).status, 200);
  });

  t.test('when 5 failures fall within 15 minutes across the first failure\'s window then they lock (sliding window)', async (t) => {
    // 1 failure, then 3 at 14:30, then 2 at 15:30: the first has left the window by then, the
    // other five are within 61 s. A window fixed at the first failure restarted at 15:30 and let
    // them all through.
    t.teardown(() => void (offset = 0));
    t.equal((await login('dave', 'wrong-a', dave)).status, 401);
    offset = 14 * MIN + 30_000;
    for (let i = 0; i < 3; i++) t.equal((await login('dave', `wrong-b${i}`, dave)).status, 401);
    offset = 15 * MIN + 30_000;
    t.equal((await login('dave', 'wrong-c0', dave)).status, 401, '4 inside the window');
    t.equal((await login('dave', 'wrong-c1', dave)).status, 401, 'the 5th inside the window: judged, and locks');
    const r = await login('dave', dave.password, dave);
    t.equal(r.status, 423, 'locked, even with the right password');
    t.equal((await a.request('/v1/users/dave/unlock', { method: 'POST', token: a.officer.token })).status, 200);
  });

  t.test('when an unknown login fails 5 times then it answers ACCOUNT_LOCKED like a real one', async (t) => {
    for (let i = 0; i < 5; i++) t.equal((await login('ghost', `wrong-${i}`, dave)).body.error.code, 'AUTH_FAILED');
    const r = await login('ghost', 'wrong-5', dave);
    t.equal(r.status, 423);
    t.equal(r.body.error.code, 'ACCOUNT_LOCKED');
  });

  t.test('when unlock is asked for an account that is not locked then ACCOUNT_STATE', async (t) => {
    const r = await a.request('/v1/users/dave/unlock', { method: 'POST', token: a.officer.token });
    t.equal(r.status, 409);
    t.equal(r.body.error.code, 'ACCOUNT_STATE');
  });
});

t.test('envelopes and first login', async (t) => {
  const created = await a.request('/v1/users', {
    token: a.officer.token,
    body: { login: 'erin', fullName: 'Erin Example', department: 'Ops', clearance: 'secret', role: 'staff' },
  });
  t.equal(created.status, 201);
  const { newKeyAndCsr } = await import('../../helpers/appliance.js');
  const { keyPair, csrPem } = await newKeyAndCsr('p384', 'erin');
  const issued = await a.request('/v1/users/erin/certificates', { token: a.officer.token, body: { csr: csrPem } });
  const { Certificate } = await import('../../../pki/index.js');
  const erin = { cert: Certificate.fromPem(issued.body.certificate), key: keyPair.privateKey };
  const erinTls = { cert: erin.cert.pem, key: await exportPrivateKeyPem(erin.key) };

  t.test('when an unused envelope is past its expiry then ENVELOPE_EXPIRED', async (t) => {
    offset = 8 * DAY;
    t.teardown(() => void (offset = 0));
    const r = await login('erin', created.body.envelope.password, erin);
    t.equal(r.status, 401);
    t.equal(r.body.error.code, 'ENVELOPE_EXPIRED');
  });

  let envelope = created.body.envelope;
  t.test('when the officer reissues the envelope then the old password stops working and the new one works', async (t) => {
    const reset = await a.request('/v1/users/erin/reset', { method: 'POST', token: a.officer.token });
    t.equal(reset.status, 200);
    t.not(reset.body.envelope.serial, envelope.serial);
    t.equal((await login('erin', envelope.password, erin)).body.error.code, 'AUTH_FAILED');
    envelope = reset.body.envelope;
    const r = await login('erin', envelope.password, erin);
    t.equal(r.status, 200);
    t.equal(r.body.mustChangePassword, true);
    t.equal(r.body.envelopeSerial, envelope.serial);
  });

  t.test('when the password is not yet changed then other routes answer PASSWORD_CHANGE_REQUIRED', async (t) => {
    const r = await login('erin', envelope.password, erin);
    const token = r.body.token;
    const me = await a.request('/v1/me', { token, ...erinTls });
    t.equal(me.status, 200, 'me is allowed');
    t.equal(me.body.mustChangePassword, true, 'and says the envelope password is still to be changed');
    const pw = await a.request('/v1/auth/password', { token, ...erinTls, body: { currentPassword: envelope.password, newPassword: 'Another-long-passphrase' } });
    t.equal(pw.status, 403);
    t.equal(pw.body.error.code, 'PASSWORD_CHANGE_REQUIRED');
    t.match(pw.body.error.message, /sigil login/, 'the message tells a CLI user what to do');
  });

  t.test('first-login refusals', async (t) => {
    const r = await login('erin', envelope.password, erin);
    const token = r.body.token;
    const goodReceipt = await signB64(envelopeReceiptStatement('erin', envelope.serial), erin.cert, erin.key);

    const wrongSerial = await signB64(envelopeReceiptStatement('erin', 'ENV-000000000000'), erin.cert, erin.key);
    const r1 = await a.request('/v1/auth/first-login', { token, ...erinTls, body: { newPassword: 'Fresh-passphrase-for-E', receipt: wrongSerial } });
    t.equal(r1.body.error?.code, 'RECEIPT_INVALID', 'when the receipt names another serial then RECEIPT_INVALID ' + JSON.stringify(r1.body));

    const otherKey = await signB64(envelopeReceiptStatement('erin', envelope.serial), alice.cert, alice.key);
    const r2 = await a.request('/v1/auth/first-login', { token, ...erinTls, body: { newPassword: 'Fresh-passphrase-for-E', receipt: otherKey } });
    t.equal(r2.body.error.code, 'RECEIPT_INVALID', 'when the receipt is signed by another key then RECEIPT_INVALID');

    const r3 = await a.request('/v1/auth/first-login', { token, ...erinTls, body: { newPassword: envelope.password, receipt: goodReceipt } });
    t.equal(r3.body.error.code, 'PASSWORD_WEAK', 'when the new password is the envelope password then PASSWORD_WEAK');
    t.match(r3.body.error.message, /envelope/);

    const r4 = await a.request('/v1/auth/first-login', { token, ...erinTls, body: { newPassword: 'short', receipt: goodReceipt } });
    t.equal(r4.body.error.code, 'PASSWORD_WEAK');

    // A second session opened with the envelope password (whoever else read the envelope).
    const other = (await login('erin', envelope.password, erin)).body.token as string;
    const ok = await a.request('/v1/auth/first-login', { token, ...erinTls, body: { newPassword: 'Fresh-passphrase-for-E', receipt: goodReceipt } });
    t.equal(ok.status, 200);
    const stale = await a.request('/v1/me', { token: other, ...erinTls });
    t.equal(stale.body.error?.code, 'SESSION_INVALID', 'the other envelope-password session ended with the first login');
    t.equal((await a.request('/v1/me', { token, ...erinTls })).status, 200, 'the session that did the first login goes on');
    const used = await a.appliance.audit.list('envelope.used');
    t.equal(used.at(-1)?.detail?.serial, envelope.serial);
    const rec = await a.appliance.accounts.envelope(envelope.serial);
    t.equal(rec?.state, 'used');
    t.ok(rec?.receipt && rec.receipt.length > 100, 'the signed receipt is stored');

    const again = await a.request('/v1/auth/first-login', { token, ...erinTls, body: { newPassword: 'Fresh-passphrase-for-E-2', receipt: goodReceipt } });
    t.equal(again.status, 409);
    t.equal(again.body.error.code, 'PASSWORD_CHANGE_NOT_PENDING');
    t.equal((await login('erin', envelope.password, erin)).body.error.code, 'AUTH_FAILED', 'the envelope password no longer works');
    t.equal((await login('erin', 'Fresh-passphrase-for-E', erin)).status, 200);
  });
});

t.test('sessions', async (t) => {
  t.test('when the current password is wrong then PASSWORD_WRONG; when right then the new one works', async (t) => {
    const token = await a.loginAs('bob', bob.password, bob.cert, bob.key);
    const bad = await a.request('/v1/auth/password', { token, ...as(bob), body: { currentPassword: 'nope', newPassword: 'Fresh-passphrase-for-B' } });
    t.equal(bad.status, 401);
    t.equal(bad.body.error.code, 'PASSWORD_WRONG');
    const same = await a.request('/v1/auth/password', { token, ...as(bob), body: { currentPassword: bob.password, newPassword: bob.password } });
    t.equal(same.body.error.code, 'PASSWORD_WEAK');
    const ok = await a.request('/v1/auth/password', { token, ...as(bob), body: { currentPassword: bob.password, newPassword: 'Fresh-passphrase-for-B' } });
    t.equal(ok.status, 200, JSON.stringify(ok.body));
    t.equal((await login('bob', bob.password, bob)).body.error.code, 'AUTH_FAILED');
    t.equal((await login('bob', 'Fresh-passphrase-for-B', bob)).status, 200);
    bob.password = 'Fresh-passphrase-for-B';
  });

  t.test('when a session guesses the current password 5 times then the account locks and its sessions end', async (t) => {
    const gus = await a.createStaff({ login: 'gus', clearance: 'restricted' });
    const token = await a.loginAs('gus', gus.password, gus.cert, gus.key);
    const codes = [];
    for (let i = 0; i < 5; i++) {
      const r = await a.request('/v1/auth/password', { token, ...as(gus), body: { currentPassword: `guess-${i}`, newPassword: 'Fresh-passphrase-for-G' } });
      codes.push(r.body.error?.code);
    }
    t.same(codes, Array(5).fill('PASSWORD_WRONG'));
    t.equal((await a.request('/v1/me', { token, ...as(gus) })).body.error?.code, 'SESSION_INVALID', 'the guessing session is over');
    t.equal((await login('gus', gus.password, gus)).status, 423, 'the account is locked, even for the right password');
    t.equal((await a.appliance.audit.list('login.locked')).at(-1)?.subject, 'gus');
    t.equal((await a.request('/v1/users/gus/unlock', { method: 'POST', token: a.officer.token })).status, 200);
  });

  t.test('when the session logs out then its token answers SESSION_INVALID', async (t) => {
    const token = await a.loginAs('alice', alice.password, alice.cert, alice.key);
    t.equal((await a.request('/v1/auth/logout', { method: 'POST', token, ...as(alice) })).status, 200);
    const r = await a.request('/v1/me', { token, ...as(alice) });
    t.equal(r.status, 401);
    t.equal(r.body.error.code, 'SESSION_INVALID');
  });

  t.test('when a token is presented over another certificate then SESSION_INVALID', async (t) => {
    const token = await a.loginAs('alice', alice.password, alice.cert, alice.key);
    const r = await a.request('/v1/me', { token, ...as(bob) });
    t.equal(r.body.error.code, 'SESSION_INVALID');
  });

  t.test('when the session is idle longer than the idle timeout then SESSION_EXPIRED', async (t) => {
    const token = await a.loginAs('alice', alice.password, alice.cert, alice.key);
    offset = 31 * MIN;
    t.teardown(() => void (offset = 0));
    const r = await a.request('/v1/me', { token, ...as(alice) });
    t.equal(r.status, 401);
    t.equal(r.body.error.code, 'SESSION_EXPIRED');
    t.match(r.body.error.message, /idle/);
  });

  t.test('issue 8 regression (session write per request): when requests come within the touch interval then last_used_at is not rewritten, and activity still keeps the session alive', async (t) => {
    const token = await a.loginAs('alice', alice.password, alice.cert, alice.key);
    t.teardown(() => void (offset = 0));
    const lastUsed = async () =>
      (await a.appliance.vault.db.all<{ last_used_at: string }>('SELECT last_used_at FROM sessions WHERE login = ? AND ended_at IS NULL ORDER BY created_at DESC LIMIT 1', ['alice']))[0]!.last_used_at;
    const first = await lastUsed();
    offset = 10_000;
    t.equal((await a.request('/v1/me', { token, ...as(alice) })).status, 200);
    t.equal(await lastUsed(), first, 'a request 10 s later writes nothing');
    offset = 2 * MIN;
    t.equal((await a.request('/v1/me', { token, ...as(alice) })).status, 200);
    t.not(await lastUsed(), first, 'after the touch interval the idle timer moves');
    offset = 2 * MIN + 29 * MIN;
    t.equal((await a.request('/v1/me', { token, ...as(alice) })).status, 200, 'idle less than 30 min since the last write: still alive');
  });

  t.test('when the session is older than its absolute lifetime then SESSION_EXPIRED even if active', async (t) => {
    const token = await a.loginAs('alice', alice.password, alice.cert, alice.key);
    t.teardown(() => void (offset = 0));
    for (let h = 1; h <= 12; h++) {
      offset = h * 25 * MIN; // keep it from idling out
      await a.request('/v1/me', { token, ...as(alice) });
    }
    offset = 12 * 60 * MIN + MIN;
    const r = await a.request('/v1/me', { token, ...as(alice) });
    t.equal(r.body.error.code, 'SESSION_EXPIRED');
    t.match(r.body.error.message, /absolute/);
  });

  t.test('when no token is sent then AUTH_REQUIRED; when it is malformed then SESSION_INVALID', async (t) => {
    const r = await a.request('/v1/me', { ...as(alice) });
    t.equal(r.status, 401);
    t.equal(r.body.error.code, 'AUTH_REQUIRED');
    const m = await a.request('/v1/me', { ...as(alice), headers: { authorization: 'Basic abc' } });
    t.equal(m.body.error.code, 'SESSION_INVALID');
  });
});

t.test('bad input', async (t) => {
  t.test('when a body exceeds the limit then 413 BODY_TOO_LARGE (with and without Content-Length)', async (t) => {
    const big = JSON.stringify({ login: 'x'.repeat(100 * 1024) });
    const r = await a.request('/v1/auth/challenge', { rawBody: big });
    t.equal(r.status, 413);
    t.equal(r.body.error.code, 'BODY_TOO_LARGE');
    const chunked = await a.request('/v1/auth/challenge', { rawBody: big, headers: { 'transfer-encoding': 'chunked', 'content-type': 'application/json' } });
    t.equal(chunked.status, 413);
    t.equal(chunked.body.error.code, 'BODY_TOO_LARGE');
  });

  t.test('when the route does not exist then 404 NOT_FOUND with a request id', async (t) => {
    const r = await a.request('/v1/nothing-here');
    t.equal(r.status, 404);
    t.equal(r.body.error.code, 'NOT_FOUND');
    t.equal(r.body.error.requestId, r.headers['x-request-id']);
  });

  t.test('when the body does not fit the schema then 400 BAD_REQUEST naming the field', async (t) => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /JSON/],
      [{}, /login/],
      [{ login: 'UPPER' }, /login/],
      [{ login: 'alice', extra: 1 }, /extra|unrecognized/i],
      [[1, 2], /body|expected object/i],
    ];
    for (const [body, msg] of cases) {
      const r = await a.request('/v1/auth/challenge', typeof body === 'string' ? { rawBody: body } : { body });
      t.equal(r.status, 400, JSON.stringify(body));
      t.equal(r.body.error.code, 'BAD_REQUEST');
      t.match(r.body.error.message, msg);
    }
    const l = await a.request('/v1/auth/login', { body: { login: 'alice', password: 'x', nonce: 'short', signature: '!!' } });
    t.equal(l.body.error.code, 'BAD_REQUEST');
    t.notMatch(JSON.stringify(l.body), /!!/, 'the raw input is not echoed');
  });

  t.test('when a staff session calls an officer route then FORBIDDEN', async (t) => {
    const token = await a.loginAs('alice', alice.password, alice.cert, alice.key);
    const r = await a.request('/v1/users', { token, ...as(alice) });
    t.equal(r.status, 403);
    t.equal(r.body.error.code, 'FORBIDDEN');
  });
});

t.test('when requests ran then the log holds JSON lines without passwords, tokens or keys', async (t) => {
  t.ok(a.logs.length > 20);
  const all = a.logs.join('');
  for (const line of a.logs) t.doesNotThrow(() => JSON.parse(line));
  t.notOk(all.includes(alice.password), 'no password');
  t.notOk(all.includes(a.officer.token), 'no token');
  t.notOk(all.includes('PRIVATE KEY'), 'no key');
  t.ok(a.logs.some((l) => JSON.parse(l).msg === 'request' && JSON.parse(l).path === '/v1/auth/login'));
});
