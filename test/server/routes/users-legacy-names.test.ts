/**
 * Review defect: accounts created before full names and departments were capped at 64 characters
 * (they were allowed 128) exist in old vaults. They were unusable: a certificate holds 64, so
 * issuance failed with pki's INVALID_PARAMETER about an "organizationalUnit", and the officer had
 * no way to shorten the names or to remove the account. Now issuance says what is wrong
 * (ACCOUNT_NAME_TOO_LONG), `POST /v1/users/:login/name` shortens them (new names stay ≤ 64) and
 * `DELETE /v1/users/:login` removes an account that never had a certificate. The old accounts are
 * written into vault.db the way the old version did, with a raw SQLite connection. Real TLS.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { loginStatement, PATHS } from '../../../server/index.js';
import { newKeyAndCsr, signB64, startTestAppliance } from '../../helpers/appliance.js';
import { rawSql } from '../../helpers/raw-sql.js';

const a = await startTestAppliance();
t.teardown(() => a.stop());
const officer = { token: a.officer.token };
const vaultDb = join(a.dataDir, PATHS.vault, 'vault.db');

const NAME_100 = 'Anna-Maria Konstantinopoulou-Wittgenstein von Hohenberg und Liechtenstein-Sankt Gallen zu Rhei'.padEnd(100, 'n');
const DEPT_70 = 'Directorate of Signals Intelligence, Cryptographic Materials Section 4'.padEnd(70, '.');
const NAME_65 = 'B'.repeat(65);

/** What the old version's AccountStore.create + addEnvelope wrote (server/accounts, before the 64 cap). */
async function insertAsOldVersion(login: string, fullName: string, department: string): Promise<void> {
  const hash = await a.appliance.hasher.hash('Old-envelope-password-1');
  const at = new Date().toISOString();
  const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const serial = `ENV-${randomBytes(6).toString('hex').toUpperCase()}`;
  await rawSql(vaultDb, [
    `INSERT INTO accounts (login, full_name, department, role, clearance, status, password_hash,
       must_change_password, created_at, created_by)
     VALUES (${q(login)}, ${q(fullName)}, ${q(department)}, 'staff', 'secret', 'active', ${q(hash)}, 1, ${q(at)}, 'officer')`,
    `INSERT INTO envelopes (serial, login, issued_by, issued_at, expires_at, state)
     VALUES (${q(serial)}, ${q(login)}, 'officer', ${q(at)}, ${q(at)}, 'pending')`,
  ]);
}

await insertAsOldVersion('legacy', NAME_100, DEPT_70);
await insertAsOldVersion('legacy2', NAME_65, 'Ops');

t.test('when an account from before the 64 cap exists then the officer reads it like any other', async (t) => {
  const one = await a.request('/v1/users/legacy', officer);
  t.equal(one.status, 200);
  t.equal(one.body.fullName, NAME_100);
  const all = await a.request('/v1/users', officer);
  t.ok(all.body.users.some((u: { login: string }) => u.login === 'legacy2'));
});

t.test('when a certificate is asked for such an account then 409 ACCOUNT_NAME_TOO_LONG says how to fix it', async (t) => {
  const { csrPem } = await newKeyAndCsr(a.appliance.meta.profile, 'legacy');
  for (const [path, body] of [
    ['/v1/users/legacy/certificates', { csr: csrPem }],
    ['/v1/users/legacy/certificates/p12', {}],
  ] as const) {
    const r = await a.request(path, { ...officer, body });
    t.equal(r.status, 409, path);
    t.equal(r.body.error.code, 'ACCOUNT_NAME_TOO_LONG');
    t.match(r.body.error.message, /fullName of 100 characters and a department of 70 characters.*POST \/v1\/users\/legacy\/name/);
  }
  t.same((await a.request('/v1/users/legacy/certificates', officer)).body.certificates, [], 'nothing was issued');
});

t.test('when the officer shortens the names then new names stay within 64 and the account gets a certificate', async (t) => {
  const tooLong = await a.request('/v1/users/legacy/name', { ...officer, body: { fullName: NAME_65 } });
  t.equal(tooLong.status, 400, 'a new name of 65 is refused, as for a new account');
  t.equal(tooLong.body.error.code, 'BAD_REQUEST');
  t.equal((await a.request('/v1/users/legacy/name', { ...officer, body: {} })).body.error.code, 'BAD_REQUEST', 'one of the two is needed');
  const created = await a.request('/v1/users', {
    ...officer,
    body: { login: 'newcomer', fullName: NAME_65, department: 'Ops', clearance: 'secret', role: 'staff' },
  });
  t.equal(created.status, 400, 'and new accounts still take at most 64');

  const renamed = await a.request('/v1/users/legacy/name', { ...officer, body: { fullName: 'Anna-Maria von Hohenberg', department: 'Signals, Section 4' } });
  t.equal(renamed.status, 200);
  t.match(renamed.body, { login: 'legacy', fullName: 'Anna-Maria von Hohenberg', department: 'Signals, Section 4' });
  t.match((await a.appliance.audit.list('account.renamed')).at(-1), { actor: 'officer', subject: 'legacy', detail: { fields: 'fullName,department' } });
  const same = await a.request('/v1/users/legacy/name', { ...officer, body: { department: 'Signals, Section 4' } });
  t.equal(same.body.error.code, 'ACCOUNT_STATE', 'a rename that changes nothing is refused');

  const { csrPem } = await newKeyAndCsr(a.appliance.meta.profile, 'legacy');
  const issued = await a.request('/v1/users/legacy/certificates', { ...officer, body: { csr: csrPem } });
  t.equal(issued.status, 201);
  const revoked = await a.request(`/v1/certificates/${issued.body.serial}/revoke`, { ...officer, body: { reason: 'superseded' } });
  t.equal(revoked.status, 200, 'its certificates can be revoked');
  t.equal((await a.request('/v1/users/legacy/disable', { method: 'POST', ...officer })).body.status, 'disabled');

  const del = await a.request('/v1/users/legacy', { method: 'DELETE', ...officer });
  t.equal(del.status, 409, 'an account that has had a certificate is kept');
  t.equal(del.body.error.code, 'ACCOUNT_IN_USE');
  t.equal((await a.request('/v1/users/legacy', officer)).status, 200);
});

t.test('when the officer deletes an old account that never had a certificate then it is gone, and its lock stays with its login', async (t) => {
  // Guessed until locked, over the officer's certificate (any certificate can try any login).
  const tryLogin = async () => {
    const ch = await a.request('/v1/auth/challenge', { body: { login: 'legacy2' } });
    const signature = await signB64(loginStatement('legacy2', ch.body.nonce), a.officer.cert, a.officer.key);
    return a.request('/v1/auth/login', { body: { login: 'legacy2', password: 'guess', nonce: ch.body.nonce, signature } });
  };
  for (let i = 0; i < 5; i++) t.equal((await tryLogin()).body.error.code, 'AUTH_FAILED');
  t.equal((await tryLogin()).body.error.code, 'ACCOUNT_LOCKED');

  const del = await a.request('/v1/users/legacy2', { method: 'DELETE', ...officer });
  t.equal(del.status, 200);
  t.same(del.body, { login: 'legacy2', deleted: true });
  t.equal((await a.request('/v1/users/legacy2', officer)).body.error.code, 'ACCOUNT_NOT_FOUND');
  t.same(await rawSql(vaultDb, [`SELECT serial FROM envelopes WHERE login = 'legacy2'`]), [], 'its envelope went with it');
  t.match((await a.appliance.audit.list('account.deleted')).at(-1), { actor: 'officer', subject: 'legacy2' });
  t.equal((await tryLogin()).body.error.code, 'ACCOUNT_LOCKED', 'the deleted login still answers as it did: locked');
  t.equal((await a.request('/v1/users/legacy2', { method: 'DELETE', ...officer })).body.error.code, 'ACCOUNT_NOT_FOUND');
});
