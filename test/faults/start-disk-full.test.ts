/**
 * Fault (issue 8): the appliance (re)starts on a disk full to the last byte. SQLite cannot open a
 * database without room for its -shm and -wal, so before this a server stopped on a full disk
 * could not start again — nor, then, delete anything to make room — and said only "disk I/O
 * error". Now the open releases the disk reserve a run left there (server/vault/disk-reserve.ts
 * `roomToOpen`): the server starts, refuses new data with 507 while the reserve is out, serves
 * reads and deletions, and takes messages again once space returns. Every start step that writes
 * (TLS certificate, CRL, audit certificate) runs in that room; with no reserve the open fails
 * with VAULT_FULL saying what to do, and a step that meets a full disk while its certificate is
 * still valid is logged, not fatal. Real size-limited tmpfs; skips, saying so, where none can be
 * mounted (not root).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Certificate, verifyDetached, type ProfileName } from '../../pki/index.js';
import {
  Client,
  composeMessage,
  createUser,
  deleteRequest,
  initDataDir,
  officerOf,
  startServerProc,
  type LoadResponse,
  type ServerProc,
} from '../../bench/lib/load.js';
import { PATHS } from '../../server/appliance.js';
import { renewAuditCertIfDue } from '../../server/certs/audit-cert-renewal.js';
import { loadConfig, openAppliance } from '../../server/index.js';
import { initAppliance } from '../../server/init.js';
import { createLogger } from '../../server/log.js';
import { startMessaging } from '../../server/main.js';
import { checkAppliance } from '../../server/ops/index.js';
import { renewIssuing } from '../../server/renew-issuing.js';
import { auditTrailOf } from '../../server/routes/audit.js';
import { DISK_RESERVE_FILE } from '../../server/vault/index.js';
import { TEST_ARGON2 } from '../helpers/appliance.js';
import { auditRenewalFixture } from '../helpers/pki-fixtures.js';
import { ensureServerBuilt } from '../helpers/server-process.js';
import { fillUp, mountTmpfs } from '../helpers/tmpfs.js';

const DAY = 86_400_000;
const MiB = 1024 * 1024;
const PROFILE: ProfileName = 'p256';
const CHEAP = { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } };

t.test('when the server stopped and the disk filled up then it starts again, refuses new data, deletes, and takes messages once space returns', async (t) => {
  ensureServerBuilt();
  let server: ServerProc | undefined;
  t.teardown(async () => void (await server?.kill().catch(() => undefined)));
  const mnt = mountTmpfs(t, 64, 'a restart on a full disk is not exercised');
  if (!mnt) return;
  const dataDir = join(mnt, 'data');
  const { init } = await initDataDir({ profile: PROFILE, config: { ...CHEAP, diskReserveBytes: 8 * MiB }, dataDir });
  server = await startServerProc(dataDir);
  const officer = await officerOf(server.url, init, 1);
  let alice = await createUser(officer, { login: 'alice', clearance: 'secret', profile: PROFILE });
  const bob = await createUser(officer, { login: 'bob', clearance: 'secret', profile: PROFILE });
  const conv = (await alice.client.request('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  const sent: string[] = [];
  for (let i = 0; i < 4; i++) {
    const m = await composeMessage(alice, conv, `before ${i}`);
    t.equal((await alice.client.request('/v1/messages', { raw: m.payload })).status, 201);
    sent.push(m.id);
  }
  for (const c of [officer.client, alice.client, bob.client]) c.close();
  t.equal(await server.stop(), 0, 'control: the server stops cleanly');
  server = undefined;
  t.ok(existsSync(join(dataDir, 'vault', DISK_RESERVE_FILE)), 'control: the run left its reserve');

  const filler = join(mnt, 'filler.bin');
  fillUp(filler);
  server = await startServerProc(dataDir);
  t.pass('the server starts on the full disk');
  const released = server.stderr().split('\n').filter((l) => l.includes('vault.reserve-released'));
  t.match(released.join('\n'), /the disk was full when the vault opened/, 'having released its reserve to open the vault');

  // The same session as before the restart, over a new connection to the new port.
  const client = new Client(server.url, officer.caPem, alice.certPem, alice.keyPem);
  client.token = alice.client.token;
  alice = { ...alice, client };
  t.equal((await alice.client.request('/v1/me')).status, 200, 'a session from before the restart still works');
  const refused = await alice.client.request('/v1/messages', { raw: (await composeMessage(alice, conv, 'on the full disk')).payload });
  t.match(refused, { status: 507, body: { error: { code: 'VAULT_FULL' } } }, 'a new message is refused with a clear error');
  const read = await alice.client.request(`/v1/messages/${sent[0]}`);
  t.equal(read.status, 200, 'messages are read');
  const v = await verifyDetached(new Uint8Array(Buffer.from(read.body.signature, 'base64')), new TextEncoder().encode(read.body.header), { expectedSigner: alice.cert });
  t.ok(v.ok, 'and verify');
  const del = await alice.client.request(`/v1/messages/${sent[1]}`, { method: 'DELETE', body: await deleteRequest(alice, `message:${sent[1]}`, 'make room') });
  t.equal(del.status, 200, `a message is deleted on the full disk (${JSON.stringify(del.body).slice(0, 160)})`);

  rmSync(filler);
  let again: LoadResponse | undefined;
  for (let i = 0; i < 10 && again?.status !== 201; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1100)); // a refused write looks at the disk at most once a second
    again = await alice.client.request('/v1/messages', { raw: (await composeMessage(alice, conv, `after ${i}`)).payload });
  }
  t.equal(again?.status, 201, `messages are taken again once space returns (${JSON.stringify(again?.body).slice(0, 160)})`);
  t.ok(existsSync(join(dataDir, 'vault', DISK_RESERVE_FILE)), 'the reserve is made again');
  alice.client.close();
  t.equal(await server.stop(), 0, 'the server stops cleanly');
  server = undefined;
  const report = await checkAppliance({ dataDir, masterKey: { keyFilePath: join(dataDir, 'secrets', 'master.key') } });
  t.ok(report.ok, `appliance check passes: ${JSON.stringify(report.items.filter((i) => i.status === 'fail'))}`);
});

t.test('when the disk is full at a start with the TLS certificate, the CRL and the audit certificate all due then each is done in the released room', async (t) => {
  const mnt = mountTmpfs(t, 48, 'a start on a full disk is not exercised');
  if (!mnt) return;
  const dataDir = join(mnt, 'data');
  const init = await initAppliance({ dataDir, listen: '127.0.0.1:0', config: { argon2: TEST_ARGON2, diskReserveBytes: 4 * MiB } });
  const read = (p: string) => Certificate.fromPem(readFileSync(join(dataDir, p), 'utf8'));
  const tls0 = read(PATHS.tlsCert);
  const audit0 = read(PATHS.auditCert);
  // Ten days before the TLS certificate ends: it is due, and the CRL (a week) is stale.
  const at = new Date(tls0.notAfter.getTime() - 10 * DAY);
  const config = await loadConfig(join(dataDir, PATHS.config));
  const lines: string[] = [];
  const log = createLogger({ level: 'info', write: (l) => void lines.push(l), now: () => at });
  const masterKey = { keyFilePath: join(dataDir, PATHS.masterKeyFile) };
  // A run 40 days before makes the reserve (init does not) and publishes a CRL; nothing else is due.
  const first = await openAppliance({ dataDir, config, masterKey, now: () => new Date(at.getTime() - 40 * DAY), log });
  const crlBefore = (await first.vault.db.get<{ n: number }>('SELECT max(number) AS n FROM crls'))!.n;
  await first.close();
  t.ok(existsSync(join(dataDir, 'vault', DISK_RESERVE_FILE)), 'control: the reserve is there');
  t.equal(read(PATHS.tlsCert).serialNumber, tls0.serialNumber, 'control: the TLS certificate was not due then');
  // The root key ceremony two days before gives the issuing CA years more: the audit certificate is due.
  await renewIssuing({ dataDir, rootKeyPem: readFileSync(init.ca.rootKeyFile, 'utf8'), passphrase: init.ca.rootKeyPassphrase, now: () => new Date(at.getTime() - 2 * DAY) });

  fillUp(join(mnt, 'filler.bin'));
  lines.length = 0;
  const appliance = await openAppliance({ dataDir, config, masterKey, now: () => at, log });
  try {
    const said = lines.map((l) => JSON.parse(l) as { level: string; msg: string });
    t.same(said.filter((l) => l.level === 'error'), [], 'nothing failed');
    t.ok(said.some((l) => l.msg === 'vault.reserve-released'), 'the reserve was released to open');
    t.equal(appliance.vault.reserve.takesNewData, false, 'new data is refused while it is out');
    t.not(Certificate.fromPem(appliance.tls.certPem).serialNumber, tls0.serialNumber, 'the TLS certificate was renewed');
    t.equal(read(PATHS.tlsCert).serialNumber, Certificate.fromPem(appliance.tls.certPem).serialNumber, 'and is in place');
    t.not(appliance.auditCert.serialNumber, audit0.serialNumber, 'the audit certificate was renewed');
    t.equal(read(PATHS.auditCert).serialNumber, appliance.auditCert.serialNumber, 'and is in place');
    const crl = (await appliance.vault.db.get<{ n: number; next: string }>('SELECT number AS n, next_update AS next FROM crls ORDER BY number DESC LIMIT 1'))!;
    t.ok(crl.n > crlBefore && Date.parse(crl.next) > at.getTime(), 'a fresh CRL was published');
    const { messaging } = await startMessaging(appliance, () => at, log);
    t.pass('messaging started');
    await messaging.close();
    t.match(await auditTrailOf(appliance, () => at).verify(), { ok: true }, 'the audit trail verifies');
  } finally {
    await appliance.close();
  }
});

t.test('when the disk is full and no reserve is kept then the vault does not open, says the disk is full, and opens once space returns', async (t) => {
  const mnt = mountTmpfs(t, 32, 'a start on a full disk is not exercised');
  if (!mnt) return;
  const dataDir = join(mnt, 'data');
  await initAppliance({ dataDir, listen: '127.0.0.1:0', config: { argon2: TEST_ARGON2, diskReserveBytes: 0 } });
  const config = await loadConfig(join(dataDir, PATHS.config));
  const masterKey = { keyFilePath: join(dataDir, PATHS.masterKeyFile) };
  const vaultDir = join(dataDir, 'vault');
  // SQLite's own -shm and -wal, which it may have begun to make, are left alone: removing a WAL can
  // lose commits, and SQLite rebuilds a -shm. What must not change is the data.
  const digest = () =>
    readdirSync(vaultDir)
      .filter((f) => !f.endsWith('-shm') && !f.endsWith('-wal'))
      .sort()
      .map((f) => `${f}:${createHash('sha256').update(readFileSync(join(vaultDir, f))).digest('hex')}`)
      .join(' ');
  const filler = join(mnt, 'filler.bin');
  fillUp(filler);
  const before = digest();
  await t.rejects(openAppliance({ dataDir, config, masterKey }), { code: 'VAULT_FULL', message: /is full .*free space on that file system and start again/ });
  t.equal(digest(), before, 'the databases and the key description are as they were');
  rmSync(filler);
  const appliance = await openAppliance({ dataDir, config, masterKey });
  t.pass('it opens once space returns');
  await appliance.close();
});

t.test('when the audit certificate cannot be renewed on a full disk then the open goes on with it while it is valid, and not once it has expired', async (t) => {
  const mnt = mountTmpfs(t, 8, 'an audit renewal on a full disk is not exercised');
  if (!mnt) return;
  const { T0, clock, cert: short, events, args } = await auditRenewalFixture(mnt);
  const errors: unknown[] = [];
  const r = { ...args, onError: (err: unknown) => void errors.push(err) };
  fillUp(join(mnt, 'filler.bin'));
  clock.at = new Date(T0.getTime() + 90 * DAY); // due: 10 of 100 days left
  t.equal(await renewAuditCertIfDue(r), short, 'the current certificate is kept');
  t.match(errors, [{ code: 'ENOSPC' }], 'the failure is told');
  t.same(events, [], 'no audit entry for a renewal that did not happen');
  t.same(readdirSync(mnt), ['filler.bin'], 'no file is left behind');
  await t.rejects(renewAuditCertIfDue({ ...r, onError: undefined }), { code: 'ENOSPC' }, 'without onError the failure is thrown');
  clock.at = new Date(T0.getTime() + 101 * DAY);
  await t.rejects(renewAuditCertIfDue(r), { code: 'ENOSPC' }, 'an expired certificate is not kept: the failure is thrown');
});

t.test('when the disk is full and no reserve is kept then sigil-server start says the disk is full in one line and exits 1', async (t) => {
  ensureServerBuilt();
  const mnt = mountTmpfs(t, 32, 'a start on a full disk is not exercised');
  if (!mnt) return;
  const dataDir = join(mnt, 'data');
  await initDataDir({ profile: PROFILE, config: { ...CHEAP, diskReserveBytes: 0 }, dataDir });
  fillUp(join(mnt, 'filler.bin'));
  const failed = await startServerProc(dataDir, {}, 30_000).then(
    async (s) => (await s.kill(), 'it started'),
    (err: Error) => err.message,
  );
  const lines = failed.replace(/^server exited with (\d+) before listening: /, '').trim().split('\n');
  t.match(failed, /^server exited with 1 before listening/, 'exit 1');
  t.equal(lines.length, 1, 'one line');
  t.match(JSON.parse(lines[0]!), { level: 'error', msg: /the disk holding .* is full: .*free space on that file system and start again/, errorCode: 'VAULT_FULL' });
});
