/**
 * Review defect (certificate service, 2): nothing looked up a CSR's key among the certificates
 * already issued. Bob's certificate revoked for keyCompromise, the same CSR was certified again
 * for Carol (201) and for Bob (201); one key then logged in and signed as both.
 *
 * Real appliance, real TLS, real SQLite; only the appliance clock could be faked (it is not moved).
 */
import { join } from 'node:path';
import t from 'tap';
import { createCsr, Crl, type CryptoKeyPair } from '../../../pki/index.js';
import { initAppliance, loadConfig, openAppliance, PATHS, silentLogger } from '../../../server/index.js';
import { newKeyAndCsr, startTestAppliance, TEST_ARGON2 } from '../../helpers/appliance.js';
import { rawSql } from '../../helpers/raw-sql.js';
import { tmpDir } from '../../helpers/tmp.js';

const a = await startTestAppliance({ profile: 'p256' });
t.teardown(() => a.stop());
const officer = { token: a.officer.token, cert: a.officer.certPem, key: a.officer.keyPem };

async function account(login: string, clearance = 'secret') {
  const r = await a.request('/v1/users', { ...officer, body: { login, fullName: `User ${login}`, department: 'Ops', clearance, role: 'staff' } });
  if (r.status !== 201) throw new Error(`create ${login}: ${r.status} ${JSON.stringify(r.body)}`);
}
const issue = (login: string, csr: string) => a.request(`/v1/users/${login}/certificates`, { ...officer, body: { csr } });
const revoke = (serial: string, reason: string) => a.request(`/v1/certificates/${serial}/revoke`, { ...officer, body: { reason } });
const count = async (login: string) => (await a.request(`/v1/users/${login}/certificates`, officer)).body.certificates.length as number;
/** Another CSR for the same key: the key is refused, not a byte-identical request. */
const csrAgain = async (keyPair: CryptoKeyPair, cn: string) => (await createCsr({ keyPair, subject: { commonName: cn } })).pem;

t.test('when a key was revoked for keyCompromise then no login gets it certified again, its own included', async (t) => {
  await account('bob');
  await account('carol');
  const { keyPair, csrPem } = await newKeyAndCsr('p256', 'bob');
  const first = await issue('bob', csrPem);
  t.equal(first.status, 201);
  t.equal((await revoke(first.body.serial, 'keyCompromise')).status, 200);

  const forCarol = await issue('carol', await csrAgain(keyPair, 'carol'));
  t.equal(forCarol.status, 409, JSON.stringify(forCarol.body));
  t.equal(forCarol.body.error.code, 'KEY_COMPROMISED');
  t.match(forCarol.body.error.message, new RegExp(`certificate ${first.body.serial}.*new key`));
  const forBob = await issue('bob', csrPem);
  t.equal(forBob.status, 409);
  t.equal(forBob.body.error.code, 'KEY_COMPROMISED', 'not even for the login it was compromised under');
  t.equal(await count('bob'), 1, 'nothing recorded for bob');
  t.equal(await count('carol'), 0, 'nor for carol');
});

t.test('when a key is certified for one login then another login cannot have it, even once that certificate is revoked', async (t) => {
  await account('dana');
  await account('erin');
  const { keyPair, csrPem } = await newKeyAndCsr('p256', 'dana');
  const dana = await issue('dana', csrPem);
  t.equal(dana.status, 201);
  const erin = await issue('erin', await csrAgain(keyPair, 'erin'));
  t.equal(erin.status, 409, JSON.stringify(erin.body));
  t.equal(erin.body.error.code, 'KEY_IN_USE');
  t.match(erin.body.error.message, /another account .*dana/);
  t.equal((await revoke(dana.body.serial, 'affiliationChanged')).status, 200);
  t.equal((await issue('erin', csrPem)).body.error?.code, 'KEY_IN_USE', 'a key stays with its login');
  t.equal(await count('erin'), 0);
});

t.test('when the same login renews with its own uncompromised key then it is issued, also after a clearance change', async (t) => {
  await account('fay');
  const { csrPem } = await newKeyAndCsr('p256', 'fay');
  t.equal((await issue('fay', csrPem)).status, 201);
  t.equal((await issue('fay', csrPem)).status, 201, 'a renewal with the same key');
  const changed = await a.request('/v1/users/fay/clearance', { ...officer, body: { clearance: 'restricted' } });
  t.equal(changed.status, 200, 'revokes both as superseded');
  const after = await issue('fay', csrPem);
  t.equal(after.status, 201, JSON.stringify(after.body));
  t.equal(await count('fay'), 3);
});

t.test('when certificates were issued before keys were recorded then the upgrade fills them in and the rule holds for them', async (t) => {
  const now = () => new Date('2031-03-03T09:00:00.000Z');
  const dataDir = join(tmpDir(t, 'sigil-key-reuse-'), 'data');
  await initAppliance({ dataDir, listen: '127.0.0.1:0', profile: 'p256', now, config: { argon2: TEST_ARGON2 } });
  const config = await loadConfig(join(dataDir, PATHS.config));
  const open = () => openAppliance({ dataDir, config, masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) }, now, log: silentLogger });
  const first = await open();
  for (const login of ['gus', 'hal']) {
    await first.accountService.create({ login, fullName: `User ${login}`, department: 'Ops', clearance: 'secret', role: 'staff' }, 'officer');
  }
  const { csrPem } = await newKeyAndCsr('p256', 'gus');
  const gus = await first.certificateService.issueFromCsr('gus', csrPem, 'officer');
  await first.close();
  // The vault as the version before left it: no key column, migration not applied.
  const vaultDb = join(dataDir, PATHS.vault, 'vault.db');
  const [before] = await rawSql<{ spki_sha256: string }>(vaultDb, [`SELECT spki_sha256 FROM certificates WHERE serial = '${gus.certificate.serialNumber}'`]);
  await rawSql(vaultDb, [
    'DROP INDEX certificates_spki',
    'ALTER TABLE certificates DROP COLUMN spki_sha256',
    `DELETE FROM migrations WHERE id = 'server/certificates-2'`,
  ]);

  const second = await open();
  t.teardown(() => second.close());
  const [after] = await rawSql<{ spki_sha256: string }>(vaultDb, [`SELECT spki_sha256 FROM certificates WHERE serial = '${gus.certificate.serialNumber}'`]);
  t.equal(after?.spki_sha256, before?.spki_sha256, 'filled from the stored DER, the same hash as at issuance');
  const [missing] = await rawSql<{ n: number }>(vaultDb, ['SELECT count(*) AS n FROM certificates WHERE spki_sha256 IS NULL']);
  t.equal(missing?.n, 0, 'every certificate has its key hash (the officer\'s and the new one)');
  await t.rejects(second.certificateService.issueFromCsr('hal', csrPem, 'officer'), { code: 'KEY_IN_USE' });
});

t.test('when one certificate of a key is revoked for keyCompromise then every other certificate of that key is revoked with it', async (t) => {
  await account('ivy');
  const { csrPem } = await newKeyAndCsr('p256', 'ivy');
  const older = await issue('ivy', csrPem);
  const renewed = await issue('ivy', csrPem);
  const other = await issue('ivy', (await newKeyAndCsr('p256', 'ivy')).csrPem);
  t.equal(renewed.status, 201, 'a renewal keeps the key');
  const revoked = await revoke(older.body.serial, 'keyCompromise');
  t.equal(revoked.status, 200);
  t.same(revoked.body.sameKey, [renewed.body.serial], 'the answer names the certificate revoked with it');

  const listed = (await a.request('/v1/users/ivy/certificates', officer)).body.certificates as { serial: string; status: string; revocationReason?: string }[];
  const status = (serial: string) => listed.find((c) => c.serial === serial);
  t.match(status(renewed.body.serial), { status: 'revoked' }, 'the renewal of the compromised key goes too');
  t.match(status(other.body.serial), { status: 'active' }, 'a certificate of another key stays');
  const crl = Crl.fromPem((await a.request('/v1/crl')).body.crl);
  t.match(crl.find(renewed.body.serial), { reason: 'keyCompromise' }, 'the published CRL lists it');
  t.notOk(crl.find(other.body.serial));
  const events = await a.appliance.audit.list('certificate.revoked');
  t.match(events.find((e) => e.detail?.serial === renewed.body.serial)?.detail, { reason: 'keyCompromise', sameKeyAs: older.body.serial }, 'the audit trail says why it went');
});

t.test('when a certificate revoked for another reason is then reported compromised then its reason becomes keyCompromise and its key\'s other certificates go', async (t) => {
  // Review finding: the second revocation answered CERTIFICATE_ALREADY_REVOKED and did nothing:
  // the renewal stayed valid and the same CSR was certified again (201).
  await account('jon');
  const { csrPem } = await newKeyAndCsr('p256', 'jon');
  const older = await issue('jon', csrPem);
  const renewed = await issue('jon', csrPem);
  t.equal((await revoke(older.body.serial, 'superseded')).status, 200, 'control: revoked as superseded by the renewal');
  const before = Crl.fromPem((await a.request('/v1/crl')).body.crl).crlNumber;

  const reported = await revoke(older.body.serial, 'keyCompromise');
  t.equal(reported.status, 200, JSON.stringify(reported.body));
  t.match(reported.body, { serial: older.body.serial, reason: 'keyCompromise', sameKey: [renewed.body.serial] });
  const listed = (await a.request('/v1/users/jon/certificates', officer)).body.certificates as { serial: string; status: string; revokedAt?: string }[];
  t.match(listed.find((c) => c.serial === renewed.body.serial), { status: 'revoked' }, 'the renewal of the compromised key goes');
  t.equal(listed.find((c) => c.serial === older.body.serial)?.revokedAt, reported.body.revokedAt, 'the first revocation\'s time stays');
  const crl = Crl.fromPem((await a.request('/v1/crl')).body.crl);
  t.ok(crl.crlNumber > before, 'a new CRL');
  t.match(crl.find(older.body.serial), { reason: 'keyCompromise' }, 'it lists the new reason');
  t.match(crl.find(renewed.body.serial), { reason: 'keyCompromise' });
  t.equal((await issue('jon', csrPem)).body.error?.code, 'KEY_COMPROMISED', 'the key is not certified again');
  const events = await a.appliance.audit.list('certificate.revoked');
  t.match(events.find((e) => e.detail?.serial === older.body.serial && e.detail?.previousReason)?.detail, { reason: 'keyCompromise', previousReason: 'superseded' });

  const again = await revoke(older.body.serial, 'keyCompromise');
  t.equal(again.body.error?.code, 'CERTIFICATE_ALREADY_REVOKED', 'reported twice: the first report stands');
  const other = await revoke(renewed.body.serial, 'superseded');
  t.equal(other.body.error?.code, 'CERTIFICATE_ALREADY_REVOKED', 'a weaker reason never replaces keyCompromise');
});
