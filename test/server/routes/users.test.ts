/**
 * Officer operations on accounts and certificates, over real TLS, with OpenSSL checking what the
 * appliance issues (PKCS#12, certificates, CRL).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Certificate, Crl } from '../../../pki/index.js';
import { newKeyAndCsr, startTestAppliance } from '../../helpers/appliance.js';

const a = await startTestAppliance();
t.teardown(() => a.stop());
const tmp = mkdtempSync(join(tmpdir(), 'sigil-users-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const officer = { token: a.officer.token };
const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });

t.test('when an officer creates an account then the envelope carries every field as text and HTML', async (t) => {
  const r = await a.request('/v1/users', {
    ...officer,
    body: { login: 'frank', fullName: "Frank O'Brien & Sons", department: 'Signals', clearance: 'confidential', role: 'staff' },
  });
  t.equal(r.status, 201);
  t.match(r.body.account, { login: 'frank', role: 'staff', clearance: 'confidential', status: 'active' });
  const e = r.body.envelope;
  t.match(e, { login: 'frank', issuedBy: 'officer' });
  t.match(e.serial, /^ENV-[0-9A-F]{12}$/);
  t.equal(new Date(e.expiresAt).getTime() - new Date(e.issuedAt).getTime(), 7 * 24 * 3600 * 1000, 'expires in 7 days');
  for (const field of [e.serial, e.password, 'frank', 'officer', e.issuedAt, e.expiresAt]) {
    t.ok(e.text.includes(field), `text has ${field}`);
    t.ok(e.html.includes(field), `html has ${field}`);
  }
  t.match(e.text, /Receipt:/);
  t.match(e.text, /Signature:/);
  t.notOk(e.html.includes("O'Brien & Sons"), 'names are escaped in HTML');
  t.ok(e.html.includes('O&#39;Brien &#38; Sons'), 'escaped form present');
  t.ok(e.text.includes("O'Brien & Sons"), 'text keeps the name as is');
  t.notMatch(e.html, /<script/i);
  const stored = await a.appliance.accounts.get('frank');
  t.match(stored?.passwordHash, /^\$argon2id\$/, 'only an argon2id hash is stored');
  t.notOk(JSON.stringify(stored).includes(e.password));
  const ev = await a.appliance.audit.list('envelope.issued');
  t.equal(ev.at(-1)?.subject, 'frank');
});

t.test('when the login is taken then ACCOUNT_EXISTS; unknown login then ACCOUNT_NOT_FOUND', async (t) => {
  const r = await a.request('/v1/users', {
    ...officer,
    body: { login: 'frank', fullName: 'F', department: 'S', clearance: 'secret', role: 'staff' },
  });
  t.equal(r.status, 409);
  t.equal(r.body.error.code, 'ACCOUNT_EXISTS');
  const n = await a.request('/v1/users/nobody', officer);
  t.equal(n.status, 404);
  t.equal(n.body.error.code, 'ACCOUNT_NOT_FOUND');
  const bad = await a.request('/v1/users', { ...officer, body: { login: 'x1', fullName: 'F', department: 'S', clearance: 'cosmic', role: 'staff' } });
  t.equal(bad.body.error.code, 'BAD_REQUEST');
  t.match(bad.body.error.message, /clearance/);
  // Named by their code points: a raw U+2028 in an assertion's name would break the TAP stream itself.
  for (const fullName of ['Anna\u0085Lee', 'Anna \u202eeeL', 'Anna\u2028Lee', 'Anna\tLee', 'Anna\u009b2J']) {
    const r = await a.request('/v1/users', { ...officer, body: { login: 'x2', fullName, department: 'S', clearance: 'secret', role: 'staff' } });
    const name = fullName.replace(/[^\x20-\x7e]/g, (c) => `U+${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    t.equal(r.status, 400, name);
    t.match(r.body.error.message, /no control characters, bidirectional overrides or angle brackets/);
  }
  t.equal((await a.request('/v1/users/x2', officer)).status, 404, 'no account was made');
});

t.test('when an officer lists users then every account appears', async (t) => {
  const r = await a.request('/v1/users', officer);
  t.equal(r.status, 200);
  t.same(r.body.users.map((u: { login: string }) => u.login).sort(), ['frank', 'officer']);
});

t.test('certificates', async (t) => {
  const { keyPair, csrPem } = await newKeyAndCsr('p384', 'frank');
  let serial = '';

  t.test('when an officer issues from a CSR then the certificate carries the account identity and verifies with OpenSSL', async (t) => {
    const r = await a.request('/v1/users/frank/certificates', { ...officer, body: { csr: csrPem } });
    t.equal(r.status, 201);
    const cert = Certificate.fromPem(r.body.certificate);
    serial = r.body.serial;
    t.equal(cert.serialNumber, serial);
    t.equal(cert.clearance, 'confidential');
    t.equal(cert.subject.login, 'frank', JSON.stringify(cert.subject));
    t.equal(Buffer.from(cert.publicKeySpki).toString('hex'), Buffer.from(new Uint8Array(await crypto.subtle.exportKey('spki', keyPair.publicKey))).toString('hex'));
    writeFileSync(join(tmp, 'frank.pem'), r.body.certificate);
    writeFileSync(join(tmp, 'chain.pem'), r.body.chain);
    t.match(openssl(['verify', '-CAfile', join(tmp, 'chain.pem'), join(tmp, 'frank.pem')]), /OK/);
  });

  t.test('when the CSR is garbage or its signature is wrong then 400', async (t) => {
    const g = await a.request('/v1/users/frank/certificates', { ...officer, body: { csr: 'not a csr' } });
    t.equal(g.status, 400);
    t.equal(g.body.error.code, 'MALFORMED_INPUT');
    const p256 = await newKeyAndCsr('p256', 'frank');
    const w = await a.request('/v1/users/frank/certificates', { ...officer, body: { csr: p256.csrPem } });
    t.equal(w.status, 400);
    t.equal(w.body.error.code, 'WRONG_ALGORITHM', 'when the key does not fit the appliance profile then WRONG_ALGORITHM');
  });

  t.test('when an officer issues a PKCS#12 then OpenSSL opens it with the returned password', async (t) => {
    const r = await a.request('/v1/users/frank/certificates/p12', { ...officer, body: {} });
    t.equal(r.status, 201);
    t.ok(r.body.password.length >= 20);
    writeFileSync(join(tmp, 'f.p12'), Buffer.from(r.body.p12, 'base64'));
    const out = openssl(['pkcs12', '-in', join(tmp, 'f.p12'), '-passin', `pass:${r.body.password}`, '-nokeys', '-clcerts']);
    t.match(out, /UID\s*=\s*frank|UID=frank/);
    const chosen = await a.request('/v1/users/frank/certificates/p12', { ...officer, body: { password: 'short' } });
    t.equal(chosen.body.error.code, 'BAD_REQUEST', 'when a chosen PKCS#12 password is short then BAD_REQUEST');
    const before = (await a.request('/v1/users/frank/certificates', officer)).body.certificates.length;
    const withLogin = await a.request('/v1/users/frank/certificates/p12', { ...officer, body: { password: 'Frank-2026-winter' } });
    t.equal(withLogin.status, 400);
    t.equal(withLogin.body.error.code, 'PASSWORD_WEAK', 'when a chosen PKCS#12 password contains the login then PASSWORD_WEAK');
    const after = (await a.request('/v1/users/frank/certificates', officer)).body.certificates.length;
    t.equal(after, before, 'and no certificate was issued');
  });

  t.test('when an officer lists certificates then both appear as active', async (t) => {
    const r = await a.request('/v1/users/frank/certificates', officer);
    t.equal(r.body.certificates.length, 2);
    t.ok(r.body.certificates.every((c: { status: string }) => c.status === 'active'));
  });

  t.test('when an officer revokes with a reason then the CRL lists it and OpenSSL reads the reason', async (t) => {
    const before = await a.request('/v1/crl', officer);
    const r = await a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason: 'keyCompromise' } });
    t.equal(r.status, 200);
    t.match(r.body, { serial, reason: 'keyCompromise' });
    const after = await a.request('/v1/crl', officer);
    t.ok(after.body.crlNumber > before.body.crlNumber);
    const crl = Crl.fromPem(after.body.crl);
    t.equal(crl.find(serial)?.reason, 'keyCompromise');
    writeFileSync(join(tmp, 'crl.pem'), after.body.crl);
    const text = openssl(['crl', '-in', join(tmp, 'crl.pem'), '-noout', '-text']);
    t.match(text.toLowerCase(), serial.toLowerCase().replace(/^0+/, ''));
    t.match(text, /Key Compromise/);
    t.match(openssl(['crl', '-in', join(tmp, 'crl.pem'), '-CAfile', join(tmp, 'chain.pem'), '-noout']) + 'ok', /ok/);
    const list = await a.request('/v1/users/frank/certificates', officer);
    t.match(list.body.certificates.find((c: { serial: string }) => c.serial === serial), { status: 'revoked', reason: 'keyCompromise' });
  });

  t.test('when the serial is unknown or already revoked then 404 / 409', async (t) => {
    const n = await a.request('/v1/certificates/abcdef/revoke', { ...officer, body: { reason: 'unspecified' } });
    t.equal(n.status, 404);
    t.equal(n.body.error.code, 'CERTIFICATE_NOT_FOUND');
    const again = await a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason: 'unspecified' } });
    t.equal(again.status, 409);
    t.equal(again.body.error.code, 'CERTIFICATE_ALREADY_REVOKED');
    const badReason = await a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason: 'because' } });
    t.equal(badReason.body.error.code, 'BAD_REQUEST');
  });

  t.test('when an officer publishes a CRL then its number grows', async (t) => {
    const before = await a.request('/v1/crl', officer);
    const r = await a.request('/v1/crl', { method: 'POST', ...officer });
    t.equal(r.status, 200);
    t.equal(r.body.crlNumber, before.body.crlNumber + 1);
  });
});

t.test('revocation and disabling end sessions at once', async (t) => {
  const gina = await a.createStaff({ login: 'gina', clearance: 'secret' });
  const tls = { cert: gina.certPem, key: gina.keyPem };

  t.test('when the account is disabled then its session ends and login fails', async (t) => {
    const token = await a.loginAs('gina', gina.password, gina.cert, gina.key);
    const d = await a.request('/v1/users/gina/disable', { method: 'POST', ...officer });
    t.equal(d.body.status, 'disabled');
    t.equal((await a.request('/v1/me', { token, ...tls })).body.error.code, 'SESSION_INVALID');
    await t.rejects(a.loginAs('gina', gina.password, gina.cert, gina.key), /AUTH_FAILED/);
    const twice = await a.request('/v1/users/gina/disable', { method: 'POST', ...officer });
    t.equal(twice.body.error.code, 'ACCOUNT_STATE');
    const e = await a.request('/v1/users/gina/enable', { method: 'POST', ...officer });
    t.equal(e.body.status, 'active');
    const e2 = await a.request('/v1/users/gina/enable', { method: 'POST', ...officer });
    t.equal(e2.body.error.code, 'ACCOUNT_STATE');
  });

  t.test('when the account changes under a session that was used before then the next request sees the change', async (t) => {
    // The session middleware remembers a session's login to read the account beside the session:
    // the account itself must still be read fresh on every request.
    const token = await a.loginAs('gina', gina.password, gina.cert, gina.key);
    t.equal((await a.request('/v1/me', { token, ...tls })).status, 200, 'used once: the login is remembered');
    await a.appliance.accounts.setPassword('gina', (await a.appliance.accounts.require('gina')).passwordHash, true);
    t.equal((await a.request('/v1/users', { token, ...tls })).body.error.code, 'PASSWORD_CHANGE_REQUIRED', 'the change is seen at once');
    await a.appliance.accounts.setPassword('gina', (await a.appliance.accounts.require('gina')).passwordHash, false);
    await a.appliance.accounts.setStatus('gina', 'disabled');
    t.equal((await a.request('/v1/me', { token, ...tls })).body.error.code, 'SESSION_INVALID', 'a disabled account, at once');
    await a.appliance.accounts.setStatus('gina', 'active');
  });

  t.test('when the certificate is revoked then the open session ends and every request answers CERT_REVOKED', async (t) => {
    const token = await a.loginAs('gina', gina.password, gina.cert, gina.key);
    t.equal((await a.request('/v1/me', { token, ...tls })).status, 200);
    await a.request(`/v1/certificates/${gina.cert.serialNumber}/revoke`, { ...officer, body: { reason: 'affiliationChanged' } });
    const r = await a.request('/v1/me', { token, ...tls });
    t.equal(r.status, 401);
    t.equal(r.body.error.code, 'CERT_REVOKED');
    t.equal((await a.request('/v1/health', tls)).body.error.code, 'CERT_REVOKED');
    const s = await a.appliance.sessions.endForCertificate(gina.cert.serialNumber, 'certificate-revoked');
    t.equal(s, 0, 'the session was already ended by the revocation');
  });
});

t.test('when the clearance changes then certificates of the old clearance are revoked as superseded', async (t) => {
  const hank = await a.createStaff({ login: 'hank', clearance: 'restricted' });
  const same = await a.request('/v1/users/hank/clearance', { ...officer, body: { clearance: 'restricted' } });
  t.equal(same.status, 409);
  t.equal(same.body.error.code, 'CLEARANCE_UNCHANGED');
  const r = await a.request('/v1/users/hank/clearance', { ...officer, body: { clearance: 'top-secret' } });
  t.equal(r.status, 200);
  t.equal(r.body.clearance, 'top-secret');
  t.notOk(r.body.certificate, 'no active certificate until a new one is issued');
  const list = await a.request('/v1/users/hank/certificates', officer);
  t.match(list.body.certificates[0], { status: 'revoked', reason: 'superseded', clearance: 'restricted' });
  t.equal((await a.request('/v1/health', { cert: hank.certPem, key: hank.keyPem })).body.error.code, 'CERT_REVOKED');
  const ev = await a.appliance.audit.list('account.clearance-changed');
  t.match(ev.at(-1)?.detail, { from: 'restricted', to: 'top-secret' });
  const { csrPem } = await newKeyAndCsr('p384', 'hank');
  const issued = await a.request('/v1/users/hank/certificates', { ...officer, body: { csr: csrPem } });
  t.equal(Certificate.fromPem(issued.body.certificate).clearance, 'top-secret');
});

t.test('when anyone with a certificate asks then /v1/ca and /v1/crl answer without a session', async (t) => {
  const ca = await a.request('/v1/ca');
  t.equal(ca.status, 200);
  t.equal(Certificate.fromPem(ca.body.root).fingerprint, a.appliance.rootCert.fingerprint);
  t.equal(Certificate.fromPemBundle(ca.body.chain).length, 2);
  const crl = await a.request('/v1/crl');
  t.equal(crl.status, 200);
  t.ok(new Date(crl.body.nextUpdate) > new Date(crl.body.thisUpdate));
  const h = await a.request('/v1/health');
  t.match(h.body, { ok: true, version: String });
});

t.test('every security event of the scenario is in the audit log', async (t) => {
  const types = new Set((await a.appliance.audit.list()).map((e) => e.type));
  for (const ty of [
    'appliance.initialised', 'account.created', 'envelope.issued', 'envelope.used', 'login.ok', 'password.changed',
    'certificate.issued', 'certificate.revoked', 'crl.published', 'account.disabled', 'account.enabled', 'account.clearance-changed',
  ] as const) t.ok(types.has(ty), ty);
});
