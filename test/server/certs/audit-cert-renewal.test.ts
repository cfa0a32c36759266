/**
 * The audit-signing certificate renewed at open (certs/audit-cert-renewal.ts), on a real data
 * directory with the appliance clock moved: not while the issuing CA's certificate reaches no
 * further, even 19 days before its end (status keeps warning, naming renew-issuing); after the root
 * key ceremony renews the issuing CA — held early, 200 days before — the next open gives the same
 * audit key a certificate to the new issuing notAfter, audited, in `audit/audit.pem`, and the open
 * after that does not again; checkpoints signed before and after all verify. And an expired issuing
 * CA renews nothing rather than stopping the start.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Certificate } from '../../../pki/index.js';
import { PATHS } from '../../../server/appliance.js';
import { loadConfig, openAppliance } from '../../../server/index.js';
import { initAppliance } from '../../../server/init.js';
import { applianceStatus } from '../../../server/ops/index.js';
import { renewIssuing } from '../../../server/renew-issuing.js';
import { auditTrailOf } from '../../../server/routes/audit.js';
import { TEST_ARGON2 } from '../../helpers/appliance.js';
import { tmpDir } from '../../helpers/tmp.js';

const DAY = 86_400_000;
const dir = tmpDir(t, 'sigil-audit-cert-');
const dataDir = join(dir, 'data');
const init = await initAppliance({ dataDir, listen: '127.0.0.1:0', config: { argon2: TEST_ARGON2 } });
const auditPem = () => readFileSync(join(dataDir, PATHS.auditCert), 'utf8');
const original = Certificate.fromPem(auditPem());
/** 19 days before the audit certificate (and the issuing CA's first certificate) ends. */
const late = new Date(original.notAfter.getTime() - 19 * DAY);

/** Opens the appliance at `at`, signs a checkpoint, verifies the trail, closes; returns its audit certificate. */
async function openAt(at: Date): Promise<{ cert: Certificate; verified: unknown }> {
  const appliance = await openAppliance({
    dataDir,
    config: await loadConfig(join(dataDir, PATHS.config)),
    masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) },
    now: () => at,
  });
  try {
    const trail = auditTrailOf(appliance, () => at);
    await appliance.audit.append([{ type: 'logout', at, actor: 'officer' }]);
    await trail.checkpointer.current();
    return { cert: appliance.auditCert, verified: await trail.verify() };
  } finally {
    await appliance.close();
  }
}

t.test('when the issuing CA reaches no further then the audit certificate is kept and status says what to do', async (t) => {
  t.ok(Certificate.fromPem(readFileSync(join(dataDir, PATHS.issuingCert), 'utf8')).notAfter.getTime() <= original.notAfter.getTime() + 60_000);
  const { cert, verified } = await openAt(late);
  t.equal(cert.serialNumber, original.serialNumber, 'not renewed: a new one could end no later');
  t.equal(auditPem(), original.pem);
  t.match(verified, { ok: true });
  const status = await applianceStatus({ dataDir, now: () => late });
  t.match(status.warnings.join('\n'), /audit certificate expires in 19 days .*renew-issuing/);
});

t.test('when the issuing CA has been renewed then the next open renews the audit certificate for the same key, audited', async (t) => {
  const passFile = join(dir, 'pass.txt');
  writeFileSync(passFile, init.ca.rootKeyPassphrase);
  // Early: the audit certificate has 200 days left, far from due by the TLS rule.
  const ceremony = new Date(original.notAfter.getTime() - 200 * DAY);
  const afterCeremony = new Date(ceremony.getTime() + DAY);
  const r = await renewIssuing({ dataDir, rootKeyPem: readFileSync(init.ca.rootKeyFile, 'utf8'), passphrase: init.ca.rootKeyPassphrase, now: () => ceremony });
  t.ok(Date.parse(r.notAfter) > original.notAfter.getTime() + 3000 * DAY, 'the issuing CA now reaches years further');

  const { cert, verified } = await openAt(afterCeremony);
  t.not(cert.serialNumber, original.serialNumber, 'renewed at the first open after the ceremony');
  t.equal(cert.pem, auditPem(), 'and in place on disk');
  t.ok(Buffer.from(cert.publicKeySpki).equals(Buffer.from(original.publicKeySpki)), 'the same audit key');
  t.equal(cert.subjectString, original.subjectString);
  t.same(cert.extendedKeyUsage, original.extendedKeyUsage);
  t.equal(cert.notAfter.getTime(), Date.parse(r.notAfter), '3650 days from now, capped at the renewed issuing CA');
  t.match(verified, { ok: true }, 'checkpoints signed with the old certificate and with the new one verify');

  const again = await openAt(late);
  t.equal(again.cert.serialNumber, cert.serialNumber, 'not renewed twice');
  const appliance = await openAppliance({ dataDir, config: await loadConfig(join(dataDir, PATHS.config)), masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) }, now: () => late });
  try {
    const entries = await appliance.audit.list('audit.cert.renewed');
    t.equal(entries.length, 1);
    t.match(entries[0], { actor: 'system', subject: 'audit' });
  } finally {
    await appliance.close();
  }
});

t.test('when the issuing CA itself has expired then nothing is renewed and the open goes on', async (t) => {
  const { auditRenewalFixture } = await import('../../helpers/pki-fixtures.js');
  const { renewAuditCertIfDue } = await import('../../../server/certs/audit-cert-renewal.js');
  const folder = tmpDir(t, 'sigil-audit-cert-unit-');
  const { T0, clock, ca, cert: short, events, args: r } = await auditRenewalFixture(folder);
  clock.at = new Date(ca.issuing.cert.notAfter.getTime() + DAY);
  t.equal(await renewAuditCertIfDue(r), short, 'kept: an expired issuing CA issues nothing');
  t.same(events, []);
  clock.at = new Date(T0.getTime() + 90 * DAY);
  const renewed = await renewAuditCertIfDue(r);
  t.not(renewed.serialNumber, short.serialNumber, 'while the issuing CA is valid, the same call renews');
  t.equal(readFileSync(join(folder, 'audit.pem'), 'utf8'), renewed.pem);
  t.match(events, [{ type: 'audit.cert.renewed', actor: 'system' }]);
});
