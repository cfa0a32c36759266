/**
 * Review defect (certificate service, 1): a revocation whose CRL publication failed stayed off the
 * CRL for days. The revocation commits, then the CRL is published; when that failed (a full disk,
 * a crash in between) the revocation was stored but no CRL listed it: a repeated revocation answered
 * 409 and published nothing, the refresher republished only at half the CRL's validity, and the
 * answer said "nothing was written". Readers and offline evidence checks meanwhile accepted the
 * revoked certificate.
 *
 * Real appliance, real TLS, real SQLite; the fault is real too: a trigger in vault.db (written over
 * a second connection, as an older appliance's file would be shaped) makes the CRL's insert fail.
 * Only the appliance clock is faked, and here it does not even move.
 */
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Crl } from '../../../pki/index.js';
import { initAppliance, loadConfig, mapError, openAppliance, PATHS, silentLogger } from '../../../server/index.js';
import { CrlNotPublishedError } from '../../../server/certs/errors.js';
import { startTestAppliance, TEST_ARGON2 } from '../../helpers/appliance.js';
import { rawSql } from '../../helpers/raw-sql.js';
import { tmpDir } from '../../helpers/tmp.js';

const BREAK = `CREATE TRIGGER crl_write_fails BEFORE INSERT ON crls BEGIN SELECT RAISE(ABORT, 'injected: the CRL write fails'); END`;
const MEND = 'DROP TRIGGER crl_write_fails';
const vaultDb = (dataDir: string) => join(dataDir, PATHS.vault, 'vault.db');

const a = await startTestAppliance({ profile: 'p256' });
t.teardown(() => a.stop());
const officer = { token: a.officer.token, cert: a.officer.certPem, key: a.officer.keyPem };
const latest = async () => {
  const rec = await a.appliance.certificates.latestCrl();
  return { number: rec!.number, crl: Crl.fromDer(rec!.der) };
};

/** Revokes `login`'s certificate while the CRL cannot be written; answers the serial and the answer. */
async function revokeWhileBroken(t: Test, login: string) {
  const user = await a.createStaff({ login, clearance: 'secret' });
  const serial = user.cert.serialNumber;
  await rawSql(vaultDb(a.dataDir), [BREAK]);
  let mended = false;
  const mend = async () => {
    if (!mended) await rawSql(vaultDb(a.dataDir), [MEND]);
    mended = true;
  };
  t.teardown(mend);
  const before = (await latest()).number;
  const r = await a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason: 'keyCompromise' } });
  return { user, serial, r, before, mend };
}

t.test('when the CRL cannot be published then the answer says the revocation is recorded, and a retry publishes it', async (t) => {
  const { user, serial, r, before, mend } = await revokeWhileBroken(t, 'pia');
  t.equal(r.status, 503, JSON.stringify(r.body));
  t.equal(r.body.error.code, 'CRL_NOT_PUBLISHED');
  t.match(r.body.error.message, new RegExp(`certificate ${serial} is revoked`), 'it says the revocation stands');
  t.notMatch(r.body.error.message, /nothing was written/, 'and does not pretend nothing was written');
  t.equal((await a.appliance.certificates.get(serial))?.status, 'revoked', 'the revocation is recorded');
  const refused = await a.request('/v1/me', { token: user.token, cert: user.certPem, key: user.keyPem });
  t.equal(refused.body.error?.code, 'CERT_REVOKED', 'and in force');
  t.equal((await latest()).number, before, 'no CRL was published');

  await mend();
  const retry = await a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason: 'keyCompromise' } });
  t.equal(retry.status, 409, 'the retry still says it was revoked before');
  t.equal(retry.body.error.code, 'CERTIFICATE_ALREADY_REVOKED');
  const after = await latest();
  t.equal(after.number, before + 1, 'but it published the CRL first');
  t.equal(after.crl.find(serial)?.reason, 'keyCompromise', 'which lists the certificate');
  const served = await a.request('/v1/crl', officer);
  t.ok(Crl.fromPem(served.body.crl).find(serial), 'and GET /v1/crl serves it');

  const again = await a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason: 'keyCompromise' } });
  t.equal(again.status, 409);
  t.equal((await latest()).number, before + 1, 'a revocation already on the CRL publishes nothing more');
});

t.test('when the CRL could not be published then the next refresher check publishes it, fresh CRL or not', async (t) => {
  const { serial, r, before, mend } = await revokeWhileBroken(t, 'quin');
  t.equal(r.body.error?.code, 'CRL_NOT_PUBLISHED');
  await mend();
  const published = await a.appliance.certificateService.refreshCrlIfDue();
  t.ok(published, 'published although the latest CRL is far from half its validity');
  t.equal((await latest()).number, before + 1);
  t.ok((await latest()).crl.find(serial), 'listing the revocation');
  t.equal(await a.appliance.certificateService.refreshCrlIfDue(), undefined, 'and then nothing more until it is due');
});

t.test('when the appliance stopped between the revocation and its CRL then it publishes the CRL as it starts', async (t) => {
  const now = () => new Date('2031-03-03T09:00:00.000Z');
  const dataDir = join(tmpDir(t, 'sigil-crl-unpublished-'), 'data');
  await initAppliance({ dataDir, listen: '127.0.0.1:0', profile: 'p256', now, config: { argon2: TEST_ARGON2 } });
  const config = await loadConfig(join(dataDir, PATHS.config));
  const open = () => openAppliance({ dataDir, config, masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) }, now, log: silentLogger });
  const first = await open();
  const { certificate } = await first.certificateService.issuePkcs12('officer', 'officer');
  const serial = certificate.serialNumber;
  await rawSql(vaultDb(dataDir), [BREAK]);
  await t.rejects(first.certificateService.revoke(serial, 'superseded', 'officer'), { code: 'CRL_NOT_PUBLISHED' });
  const before = (await first.certificates.latestCrl())!.number;
  await first.close(); // the same state a crash right after the commit leaves on disk
  await rawSql(vaultDb(dataDir), [MEND]);

  const second = await open();
  t.teardown(() => second.close());
  const crl = (await second.certificates.latestCrl())!;
  t.equal(crl.number, before + 1, 'a CRL was published at start');
  t.ok(Crl.fromDer(crl.der).find(serial), 'listing the revocation');
});

t.test('when a clearance change cannot publish its CRL then the answer says the change and its revocations stand', async (t) => {
  const rosa = await a.createStaff({ login: 'rosa', clearance: 'secret' });
  await rawSql(vaultDb(a.dataDir), [BREAK]);
  t.teardown(() => rawSql(vaultDb(a.dataDir), [MEND]));
  const r = await a.request('/v1/users/rosa/clearance', { ...officer, body: { clearance: 'restricted' } });
  t.equal(r.status, 503, JSON.stringify(r.body));
  t.equal(r.body.error.code, 'CRL_NOT_PUBLISHED');
  t.match(r.body.error.message, /clearance of rosa is changed, the certificates of the old one are revoked/);
  t.notMatch(r.body.error.message, /nothing was written/);
  t.equal((await a.appliance.accounts.require('rosa')).clearance, 'restricted', 'the change is recorded');
  t.equal((await a.appliance.certificates.get(rosa.cert.serialNumber))?.status, 'revoked', 'and the revocation');
});

t.test('when the storage is full then the answer is 507 and says the revocation is recorded', async (t) => {
  const full = Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'VAULT_FULL' });
  const m = mapError(new CrlNotPublishedError('certificate 1f is revoked (since 2031-03-03T09:00:01.000Z)', full), 'req-1');
  t.equal(m.status, 507);
  t.equal(m.body.error.code, 'CRL_NOT_PUBLISHED');
  t.match(m.body.error.message, /certificate 1f is revoked .*storage is full/);
  t.notMatch(m.body.error.message, /nothing was written/);
});
