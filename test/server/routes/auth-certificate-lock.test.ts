/**
 * Review defect: concurrent logins got straight past the certificate lock (auth/lockout.ts).
 * The lock of a certificate was checked once before the password check and the failure counted
 * after it, so every login queued behind argon2 before the 40th failure committed went through:
 * 300 unknown logins at once over one certificate all answered AUTH_FAILED, made 300 login.failed
 * entries, 300 lockout rows and 261 certificate.locked entries (each later failure locked again and
 * pushed the lock's end further). Over real TLS at the default argon2 cost, so the logins really
 * do queue behind it.
 */
import t from 'tap';
import { loginStatement, type StoredSecurityEvent } from '../../../server/index.js';
import { signB64, startTestAppliance, type TestUser } from '../../helpers/appliance.js';

const N = 120;
const CERT_MAX = 40; // 8 × the default 5 failures per login

const a = await startTestAppliance({ config: { argon2: { memoryCost: 19_456, timeCost: 2, parallelism: 1 } } });
t.teardown(() => a.stop());

const mallory = await a.createStaff({ login: 'mallory', clearance: 'secret' });
const as = (u: TestUser) => ({ cert: u.certPem, key: u.keyPem });
const entries = async (type: string, f: (e: StoredSecurityEvent) => boolean = () => true) =>
  (await a.appliance.audit.list(type as StoredSecurityEvent['type'])).filter(f);
const loginRows = async () =>
  (await a.appliance.vault.db.get<{ n: number }>("SELECT count(*) AS n FROM login_lockouts WHERE key LIKE 'login:%'"))!.n;
const certLockedUntil = async () =>
  (await a.appliance.vault.db.get<{ locked_until: string | null }>("SELECT locked_until FROM login_lockouts WHERE key LIKE 'cert:%'"))
    ?.locked_until ?? null;

t.test('when one certificate sends many unknown logins at once then no more than the certificate bound is judged, the rest answer locked', async (t) => {
  const rowsBefore = await loginRows();
  const nonces: string[] = [];
  for (let i = 0; i < N; i++) nonces.push((await a.request('/v1/auth/challenge', { body: { login: `ghost${i}` }, ...as(mallory) })).body.nonce);
  const answers = await Promise.all(
    nonces.map((nonce, i) =>
      a.request('/v1/auth/login', { body: { login: `ghost${i}`, password: 'junk-password', nonce, signature: 'AAAA' }, ...as(mallory) }),
    ),
  );
  const codes = answers.map((r) => r.body.error?.code as string);
  const failed = codes.filter((c) => c === 'AUTH_FAILED').length;
  const locked = codes.filter((c) => c === 'ACCOUNT_LOCKED').length;
  t.equal(failed + locked, N, `every answer is one of the two: ${[...new Set(codes)].join(' ')}`);
  t.equal(failed, CERT_MAX, `exactly ${CERT_MAX} logins were judged`);
  t.ok(answers.filter((r) => r.body.error?.code === 'ACCOUNT_LOCKED').every((r) => r.status === 423), 'the rest: 423');

  const hidden = await entries('login.failed', (e) => e.actor.startsWith('login-hmac:'));
  t.equal(hidden.length, CERT_MAX, 'one login.failed per judged login, no more');
  t.equal((await loginRows()) - rowsBefore, CERT_MAX, 'one lockout row per judged login, no more');

  const lockedEntries = await entries('certificate.locked');
  t.equal(lockedEntries.length, 1, 'one certificate.locked: the lock went from off to on once');
  const until = await certLockedUntil();
  t.ok(until, 'the certificate is locked');
  t.equal(lockedEntries[0]?.detail?.until, until, 'the entry names when the lock ends');
  t.match(lockedEntries[0], { actor: 'system', subject: 'mallory', detail: { serial: mallory.cert.serialNumber } });

  const refused = await entries('login.refused', (e) => e.detail?.reason === 'certificate-locked');
  t.ok(refused.length >= 1, 'the refusals are in the audit trail');
  t.ok(refused.length <= 65, `aggregated: ${refused.length} entries for ${locked} refusals`);
});

t.test('when the certificate is locked then a real and an unknown login over it get the same answer, and the lock does not move', async (t) => {
  const until = await certLockedUntil();
  const failedBefore = (await entries('login.failed')).length;
  const rowsBefore = await loginRows();
  const attempt = async (login: string, password: string) => {
    const ch = await a.request('/v1/auth/challenge', { body: { login }, ...as(mallory) });
    const signature = await signB64(loginStatement(login, ch.body.nonce), mallory.cert, mallory.key);
    return a.request('/v1/auth/login', { body: { login, password, nonce: ch.body.nonce, signature }, ...as(mallory) });
  };
  const real = await attempt('mallory', mallory.password);
  const wrong = await attempt('mallory', 'not-the-password');
  const unknown = await attempt('ghost-late', 'not-the-password');
  for (const r of [real, wrong, unknown]) t.equal(r.status, 423);
  t.same(wrong.body.error.message, unknown.body.error.message, 'one message for real and unknown logins');
  t.same(real.body.error.code, unknown.body.error.code);
  t.equal(await certLockedUntil(), until, 'locked_until is not pushed further');
  t.equal((await entries('login.failed')).length, failedBefore, 'nothing more was judged');
  t.equal(await loginRows(), rowsBefore, 'no new unknown-login rows');
  t.equal((await entries('certificate.locked')).length, 1);
});
