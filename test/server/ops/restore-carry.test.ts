/**
 * A restore does not roll back security (server/ops/restore-carry.ts), on a real appliance with
 * real TLS and the real `restore` command: a certificate revoked after the backup stays revoked
 * (and its old session token dead), a member removed from a group stays out, a disabled account
 * stays disabled, and a certificate issued and revoked after the backup stays on the CRL the
 * restored appliance serves, which `openssl crl` reads.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { httpsRequest } from '../../helpers/appliance.js';
import { tmpDir } from '../../helpers/tmp.js';
import { live, reopen, runOps } from './fixture.js';

t.test('when security changed after a backup then restoring it keeps the changes and ends every session', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir } = L;
  const officer = h.app.officer;
  const carol = await h.app.createStaff({ login: 'ops-carol', clearance: 'secret' });
  const dave = await h.app.createStaff({ login: 'ops-dave', clearance: 'secret' });
  const A = h.as(alice);
  const group = (await A('/v1/groups', { body: { name: 'rv-team', label: 'restricted' } })).body;
  for (const u of [bob, carol]) t.equal((await A('/v1/groups/rv-team/members', { body: { login: u.login } })).status, 200);
  const inGroup = await L.send(alice, group.id, 'for the team, as long as they are in it');
  t.equal((await h.as(bob)(`/v1/messages/${inGroup}`)).status, 200, 'control: bob reads the group before the backup');

  const out = join(tmpDir(t, 'sigil-carry-'), 'sigil.sbk');
  t.equal((await runOps(['backup', '--data', dataDir, '--out', out])).code, 0);

  // After the backup: bob leaves the group, carol's key is compromised, dave is disabled, and
  // erin is created, certified and revoked within the same week.
  t.equal((await A('/v1/groups/rv-team/members/ops-bob', { method: 'DELETE' })).status, 200);
  const officerReq = (path: string, body: unknown) => h.app.request(path, { token: officer.token, body });
  const carolSerial = carol.cert.serialNumber;
  t.equal((await officerReq(`/v1/certificates/${carolSerial}/revoke`, { reason: 'keyCompromise' })).status, 200);
  t.equal((await officerReq(`/v1/users/${dave.login}/disable`, {})).status, 200);
  const erin = await h.app.createStaff({ login: 'ops-erin', clearance: 'secret' });
  const erinSerial = erin.cert.serialNumber;
  t.equal((await officerReq(`/v1/certificates/${erinSerial}/revoke`, { reason: 'keyCompromise' })).status, 200);
  const liveCrl = (await h.app.request('/v1/crl')).body as { crlNumber: number };
  await L.stopKeepingData();

  const r = await runOps(['restore', '--data', dataDir, '--in', out, '--yes', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.json().carried, { revokedCertificates: 2, accountsAddedDisabled: 1, membersRemoved: 1, crls: 2 });
  t.ok(r.json().carried.sessionsEnded >= 4, 'the sessions the backup held are ended');
  t.ok(r.json().carried.accounts >= 1, 'dave’s live row replaced the backup’s');
  const text = await runOps(['restore', '--data', dataDir, '--in', out, '--dry-run']);
  t.match(text.stdout, /kept from the replaced vault\s+\d+ sessions ended; 2 certificate revocations, .*1 memberships removed/);

  const app = await reopen(dataDir, { keyFilePath: L.keyFile }, h.app.caPem);
  t.teardown(() => app.close());
  const opts = { cert: carol.certPem, key: carol.keyPem };
  const oldToken = await httpsRequest(app.url, '/v1/conversations', h.app.caPem, { ...opts, token: carol.token });
  t.equal(oldToken.status, 401, 'carol’s revoked certificate and its old session stay dead');
  await t.rejects(app.as(carol), /401 .*CERT_REVOKED/, 'carol cannot log in again');
  await t.rejects(app.as(dave), /login: 401 .*AUTH_FAILED/, 'dave cannot log in');
  const O = await app.as(officer);
  t.equal((await O('/v1/users/ops-dave')).body.status, 'disabled', 'dave stays disabled');
  await t.rejects(app.as(erin), /401 .*CERT_REVOKED/, 'erin, revoked after the backup, is not a login either');
  const bobOld = await httpsRequest(app.url, '/v1/conversations', h.app.caPem, { cert: bob.certPem, key: bob.keyPem, token: bob.token });
  t.equal(bobOld.status, 401, 'no session survives a restore');
  const B = await app.as(bob);
  t.not((await B(`/v1/messages/${inGroup}`)).status, 200, 'bob, removed after the backup, does not read the group again');
  const A2 = await app.as(alice);
  t.same(((await A2('/v1/groups/rv-team')).body.members as { login: string }[]).map((m) => m.login).sort(), ['ops-alice', 'ops-carol']);

  // The CRL the restored appliance serves: numbered after the live ones, listing both revocations.
  const crl = (await httpsRequest(app.url, '/v1/crl', h.app.caPem, { cert: alice.certPem, key: alice.keyPem })).body as { crl: string; crlNumber: number };
  t.ok(crl.crlNumber >= liveCrl.crlNumber, `CRL number ${crl.crlNumber} does not go back from ${liveCrl.crlNumber}`);
  const crlFile = join(tmpDir(t, 'sigil-carry-crl-'), 'crl.pem');
  writeFileSync(crlFile, crl.crl);
  const listed = execFileSync('openssl', ['crl', '-in', crlFile, '-noout', '-text'], { encoding: 'utf8' }).replace(/\s+/g, ' ').toLowerCase();
  for (const [who, serial] of [['carol', carolSerial], ['erin', erinSerial]]) {
    t.match(listed, new RegExp(`serial number: ${serial}`), `${who}’s certificate is on the served CRL`);
  }

  const check = await runOps(['check', '--data', dataDir, '--json']);
  t.equal(check.code, 0, check.stdout);
});
