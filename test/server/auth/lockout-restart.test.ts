/**
 * Review defect: the lockout counters of logins that have no account lived in memory, so after a
 * restart a locked unknown login answered AUTH_FAILED where a locked real one answered
 * ACCOUNT_LOCKED — which told whether a login exists. They now live in vault.db under the login's
 * keyed hash. Over real TLS, with a real restart of the appliance on the same data directory; only
 * the appliance clock is faked (an offset from real time).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  createApp,
  listen,
  loadConfig,
  loginStatement,
  openAppliance,
  parseListen,
  PATHS,
  silentLogger,
  type Appliance,
  type Listener,
} from '../../../server/index.js';
import { httpsRequest, signB64, startTestAppliance, type TestRequestOptions, type TestResponse, type TestUser } from '../../helpers/appliance.js';

const MIN = 60_000;
let offset = 0;
const now = () => new Date(Date.now() + offset);

const a = await startTestAppliance({ now });
/** The appliance and listener serving now (replaced by the restart). */
let current: { appliance: Appliance; listener: Listener; url: string } = a;
t.teardown(async () => {
  if (current.appliance === a.appliance) return a.stop();
  await current.listener.stop(0);
  await current.appliance.close();
  rmSync(a.dataDir, { recursive: true, force: true });
});

const request = (path: string, o: TestRequestOptions): Promise<TestResponse> => httpsRequest(current.url, path, a.caPem, o);

/** Challenge + signed nonce + login over `u`'s certificate, as any client would. */
async function login(loginName: string, password: string, u: TestUser): Promise<TestResponse> {
  const tls = { cert: u.certPem, key: u.keyPem };
  const ch = await request('/v1/auth/challenge', { body: { login: loginName }, ...tls });
  const signature = await signB64(loginStatement(loginName, ch.body.nonce), u.cert, u.key);
  return request('/v1/auth/login', { body: { login: loginName, password, nonce: ch.body.nonce, signature }, ...tls });
}

/** What a client sees of an answer: status, code and message. */
const seen = (r: TestResponse) => ({ status: r.status, code: r.body?.error?.code, message: r.body?.error?.message });

/** Stops the appliance and opens it again on the same data directory (as `sigil-server start` would). */
async function restart(): Promise<void> {
  await a.listener.stop(0);
  await a.appliance.close();
  const config = await loadConfig(join(a.dataDir, PATHS.config));
  const appliance = await openAppliance({
    dataDir: a.dataDir,
    config,
    masterKey: { keyFilePath: join(a.dataDir, PATHS.masterKeyFile) },
    now,
    log: silentLogger,
  });
  const app = createApp({ appliance, now, config, log: silentLogger });
  const listener = await listen({ app, appliance, address: parseListen('127.0.0.1:0'), allowedPeers: config.allowedPeers, log: silentLogger });
  current = { appliance, listener, url: listener.url };
}

const dave = await a.createStaff({ login: 'dave', clearance: 'confidential' });
const erin = await a.createStaff({ login: 'erin', clearance: 'confidential' });
// Typed into the login field by mistake, an envelope password is a valid unknown login.
const ENVELOPE_LIKE = 'kmnpq-rstuv-wxy34-6789a';

t.test('when a real and an unknown login are locked and the appliance restarts then both still answer ACCOUNT_LOCKED alike', async (t) => {
  const real: unknown[] = [];
  const ghost: unknown[] = [];
  for (let i = 0; i < 6; i++) {
    real.push(seen(await login('dave', `wrong-${i}`, dave)));
    ghost.push(seen(await login('ghost', `wrong-${i}`, dave)));
  }
  t.same(ghost, real, 'before the restart: the same five AUTH_FAILED, then ACCOUNT_LOCKED');
  t.equal((real[5] as { code: string }).code, 'ACCOUNT_LOCKED');

  await restart();

  const afterReal = seen(await login('dave', dave.password, dave));
  const afterGhost = seen(await login('ghost', 'wrong-6', dave));
  t.equal(afterGhost.code, 'ACCOUNT_LOCKED', 'the unknown login is still locked after the restart');
  t.same(afterGhost, afterReal, 'and answers exactly as the locked real one');

  offset = 31 * MIN;
  t.teardown(() => void (offset = 0));
  t.same(seen(await login('ghost', 'wrong-7', dave)), seen(await login('dave', 'wrong-7', dave)), 'once the lock delay has passed both fail as before');
  t.equal((await login('dave', dave.password, dave)).status, 200, 'and the real one logs in');
});

t.test('when an envelope password is tried as a login then neither the lockout table nor the audit trail holds it in clear', async (t) => {
  for (let i = 0; i < 5; i++) t.equal(seen(await login(ENVELOPE_LIKE, `wrong-${i}`, erin)).code, 'AUTH_FAILED');
  t.equal(seen(await login(ENVELOPE_LIKE, 'wrong-5', erin)).code, 'ACCOUNT_LOCKED', 'counted like any login');
  const rows = await current.appliance.vault.db.all<{ key: string }>('SELECT key FROM login_lockouts');
  t.ok(rows.length > 0, 'its counter is in vault.db');
  t.notOk(JSON.stringify(rows).includes(ENVELOPE_LIKE), 'under a keyed hash, not the string');
  t.notOk(JSON.stringify(rows).includes('ghost'));
  const trail = JSON.stringify(await current.appliance.audit.list());
  t.notOk(trail.includes(ENVELOPE_LIKE), 'the audit trail names it by its keyed hash only');
  t.notOk(trail.includes('"ghost"'));
  const failed = (await current.appliance.audit.list('login.failed')).at(-1);
  t.match(failed?.subject, /^login-hmac:[0-9a-f]{64}$/);
});

t.test('when a login is guessed while it has no account and the officer then creates it then the lock stays with the account', async (t) => {
  for (let i = 0; i < 5; i++) await login('newbie', `wrong-${i}`, erin);
  const created = await request('/v1/users', {
    token: a.officer.token,
    cert: a.officer.certPem,
    key: a.officer.keyPem,
    body: { login: 'newbie', fullName: 'New Bie', department: 'Ops', clearance: 'restricted', role: 'staff' },
  });
  t.equal(created.status, 201);
  t.equal(created.body.account.status, 'locked', 'a real account guessed five times is locked; so is this one');
  t.equal(seen(await login('newbie', 'wrong-5', erin)).code, 'ACCOUNT_LOCKED');
});
