/**
 * `sigil-server renew-issuing`, the built binary on a real data directory: status names it 30 days
 * before the issuing CA's notAfter; it is refused while the server runs and with a wrong
 * passphrase (nothing changed); then the issuing CA gets a new certificate with its own name and
 * key, `ca/chain.pem` with it, an audit entry; what it issued before (the TLS, audit and officer
 * certificates) verifies under the new one in OpenSSL; a checkpoint signed before still passes
 * `check`; the server starts on it and serves the new chain; status reports the new expiry and no
 * warning; and a revoked issuing CA is not renewed, nor one whose revocation only the audit log
 * remembers, nor while the root CRL cannot be read. Revoking a renewed issuing CA lists its earlier
 * certificate too; an older certificate put back, or one for a revoked key, is not renewed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { Certificate, createRootCrl, Crl, importPrivateKeyPem, renewIssuingCa } from '../../pki/index.js';
import { AuditLog } from '../../server/audit/index.js';
import { PATHS } from '../../server/appliance.js';
import { initAppliance } from '../../server/init.js';
import { loadConfig, openAppliance } from '../../server/index.js';
import { auditTrailOf } from '../../server/routes/audit.js';
import { applianceStatus } from '../../server/ops/index.js';
import { Db } from '../../server/vault/index.js';
import { TEST_ARGON2 } from '../helpers/appliance.js';
import { runServer, startServer } from '../helpers/server-process.js';
import { tmpDir } from '../helpers/tmp.js';

const DAY = 86_400_000;
const dir = tmpDir(t, 'sigil-renew-issuing-');
const dataDir = join(dir, 'data');
const init = await initAppliance({ dataDir, listen: '127.0.0.1:0', config: { argon2: TEST_ARGON2 } });
const passFile = join(dir, 'pass.txt');
writeFileSync(passFile, `${init.ca.rootKeyPassphrase}\n`, { mode: 0o600 });
const wrongPass = join(dir, 'wrong.txt');
writeFileSync(wrongPass, 'not the passphrase\n', { mode: 0o600 });
const read = (rel: string) => readFileSync(join(dataDir, rel), 'utf8');
const before = { issuing: read(PATHS.issuingCert), chain: read(PATHS.chain) };
const officerPem = join(dir, 'officer.pem');
writeFileSync(officerPem, execFileSync('openssl', ['pkcs12', '-in', init.officer.p12, '-nokeys', '-clcerts', '-passin', `pass:${init.officer.p12Password}`], { encoding: 'utf8' }));

const renew = (dataPath: string, args: string[]) => runServer(['renew-issuing', '--data', dataPath, '--root-key', init.ca.rootKeyFile, ...args], {}, 90_000);
const logLine = (stderr: string) => JSON.parse(stderr.trim()) as { msg: string; errorCode?: string };

/** GET /v1/ca over real TLS with the officer's PKCS#12, trusting the pinned root only. */
function caOf(url: string): Promise<{ root: string; chain: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/ca`, { pfx: readFileSync(init.officer.p12), passphrase: init.officer.p12Password, ca: read(PATHS.rootCert) }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(JSON.parse(body) as { root: string; chain: string }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('when the issuing CA nears its notAfter then status says to renew it at a ceremony', async (t) => {
  const notAfter = Certificate.fromPem(before.issuing).notAfter.getTime();
  const status = await applianceStatus({ dataDir, now: () => new Date(notAfter - 10 * DAY) });
  t.match(status.certificates.find((c) => c.name === 'issuing-ca'), { warn: true, daysLeft: 10 });
  t.match(status.warnings.join('\n'), /issuing-ca certificate expires in 10 days .*sigil-server renew-issuing --data \S+ --root-key ROOT-KEY-FILE/);
});

t.test('when the server runs or the passphrase is wrong then nothing is renewed', async (t) => {
  const server = await startServer(dataDir);
  try {
    const r = await renew(dataDir, ['--passphrase-file', passFile]);
    t.equal(r.code, 1, r.stderr);
    t.match(logLine(r.stderr), { errorCode: 'OPS_SERVER_RUNNING' });
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  const wrong = await renew(dataDir, ['--passphrase-file', wrongPass]);
  t.equal(wrong.code, 1);
  t.match(logLine(wrong.stderr), { errorCode: 'ROOT_KEY_PASSPHRASE_WRONG' });
  t.equal(read(PATHS.issuingCert), before.issuing, 'issuing.pem untouched');
  t.equal(read(PATHS.chain), before.chain, 'chain.pem untouched');
});

t.test('when the issuing CA is renewed then its name and key stay, everything it issued verifies, and the server serves the new chain', async (t) => {
  const old = Certificate.fromPem(before.issuing);
  // A checkpoint signed before the renewal: check must still accept it (judged at its signing time).
  const appliance = await openAppliance({ dataDir, config: await loadConfig(join(dataDir, PATHS.config)), masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) } });
  try {
    await auditTrailOf(appliance, () => new Date()).checkpointer.current();
  } finally {
    await appliance.close();
  }
  const r = await renew(dataDir, ['--passphrase-file', passFile, '--days', '3000', '--json']);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { serial: string; previousSerial: string; notBefore: string; notAfter: string; auditSeq: number };
  const renewed = Certificate.fromPem(read(PATHS.issuingCert));
  t.equal(out.serial, renewed.serialNumber);
  t.equal(out.previousSerial, old.serialNumber);
  t.not(renewed.serialNumber, old.serialNumber);
  t.equal(renewed.subjectString, old.subjectString);
  t.ok(Buffer.from(renewed.publicKeySpki).equals(Buffer.from(old.publicKeySpki)), 'the same key');
  t.ok(Math.abs(renewed.notAfter.getTime() - (Date.now() + 3000 * DAY)) < 5 * 60_000, '--days 3000');
  t.equal(read(PATHS.chain), renewed.pem + read(PATHS.rootCert), 'chain.pem: the new issuing certificate, then the root');
  for (const rel of [PATHS.issuingCert, PATHS.chain]) t.equal(statSync(join(dataDir, rel)).mode & 0o777, 0o644, `${rel} public`);

  for (const cert of [join(dataDir, PATHS.tlsCert), join(dataDir, PATHS.auditCert), officerPem]) {
    const v = spawnSync('openssl', ['verify', '-CAfile', join(dataDir, PATHS.rootCert), '-untrusted', join(dataDir, PATHS.issuingCert), cert], { encoding: 'utf8' });
    t.equal(v.status, 0, `${cert}: ${v.stdout}${v.stderr}`);
  }

  const db = await Db.open(join(dataDir, PATHS.vault, 'vault.db'), { readonly: true });
  try {
    const row = await db.get<{ seq: number; data: string }>("SELECT seq, data FROM audit_log WHERE type = 'ca.issuing.renewed'");
    t.equal(row?.seq, out.auditSeq);
    t.match(JSON.parse(row!.data), { actor: 'system', data: { previousSerial: old.serialNumber, serial: renewed.serialNumber, rootKeySpkiSha256: /^[0-9a-f:]+$/i } });
  } finally {
    await db.close();
  }

  const status = await applianceStatus({ dataDir });
  t.match(status.certificates.find((c) => c.name === 'issuing-ca'), { serial: renewed.serialNumber, warn: false });

  const server = await startServer(dataDir);
  try {
    const ca = await caOf(server.url);
    t.equal(Certificate.fromPem(ca.chain).serialNumber, renewed.serialNumber, 'GET /v1/ca serves the renewed certificate');
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  const check = await runServer(['check', '--data', dataDir], {}, 90_000);
  t.equal(check.code, 0, check.stdout + check.stderr);
  t.match(check.stdout, /audit-log\s+\d+ entries verify; [1-9]\d* signed checkpoints match the tree/, 'the checkpoint from before the renewal verifies');
});

t.test('when the root CRL revokes the issuing CA, even one put back older, or cannot be read, then it is not renewed', async (t) => {
  const drill = join(dir, 'drill');
  cpSync(dataDir, drill, { recursive: true });
  const unrevoked = readFileSync(join(drill, PATHS.rootCrl), 'utf8');
  const revoke = await runServer(['sign-root-crl', '--data', drill, '--root-key', init.ca.rootKeyFile, '--passphrase-file', passFile, '--revoke-issuing', '--yes'], {}, 90_000);
  t.equal(revoke.code, 0, revoke.stderr);
  const issuing = readFileSync(join(drill, PATHS.issuingCert), 'utf8');
  const r = await renew(drill, ['--passphrase-file', passFile]);
  t.equal(r.code, 1);
  t.match(logLine(r.stderr), { errorCode: 'ISSUING_CA_REVOKED', msg: /revokes the issuing CA/ });
  t.equal(readFileSync(join(drill, PATHS.issuingCert), 'utf8'), issuing, 'untouched');

  writeFileSync(join(drill, PATHS.rootCrl), unrevoked);
  const older = await renew(drill, ['--passphrase-file', passFile]);
  t.equal(older.code, 1);
  t.match(logLine(older.stderr), { errorCode: 'ISSUING_CA_REVOKED', msg: /\(audit log\)/ }, 'the audit log remembers the revocation');
  writeFileSync(join(drill, PATHS.rootCrl), 'not a CRL\n');
  const unreadable = await renew(drill, ['--passphrase-file', passFile]);
  t.equal(unreadable.code, 1);
  t.match(logLine(unreadable.stderr), { errorCode: 'ROOT_CRL_INVALID' });
  t.equal(readFileSync(join(drill, PATHS.issuingCert), 'utf8'), issuing, 'still untouched');
});

t.test('when a renewed issuing CA is revoked then the root CRL lists its earlier certificate too, and openssl refuses it', async (t) => {
  // Renewal kept the key: a stolen key's forgeries chain with the older certificate as well.
  const drill = join(dir, 'drill-lineage');
  cpSync(dataDir, drill, { recursive: true });
  const oldSerial = Certificate.fromPem(before.issuing).serialNumber;
  const current = Certificate.fromPem(readFileSync(join(drill, PATHS.issuingCert), 'utf8')).serialNumber;
  t.not(current, oldSerial, 'renewed by the case above');
  const oldIssuing = join(dir, 'old-issuing.pem');
  writeFileSync(oldIssuing, before.issuing);
  const checkOld = () =>
    spawnSync('openssl', ['verify', '-crl_check', '-CAfile', join(drill, PATHS.rootCert), '-CRLfile', join(drill, PATHS.rootCrl), oldIssuing], { encoding: 'utf8' });
  t.equal(checkOld().status, 0, 'valid before the revocation');

  const r = await runServer(['sign-root-crl', '--data', drill, '--root-key', init.ca.rootKeyFile, '--passphrase-file', passFile, '--revoke-issuing', '--yes'], {}, 90_000);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`every certificate the issuing CA has had .*${oldSerial}`));
  const crl = Crl.fromPem(readFileSync(join(drill, PATHS.rootCrl), 'utf8'));
  t.same(crl.revoked.map((e) => e.serialNumber).sort(), [oldSerial, current].sort(), 'both serials of the one key');
  t.equal(crl.find(oldSerial)?.revocationDate.getTime(), crl.find(current)?.revocationDate.getTime(), 'revoked at the same time');
  const v = checkOld();
  t.not(v.status, 0);
  t.match(v.stdout + v.stderr, /certificate revoked/);
});

/** The root CA of `data` with its key, as a test holding the root key ceremony's secrets. */
async function rootOf(data: string, keyFile: string, passphrase: string) {
  const cert = Certificate.fromPem(readFileSync(join(data, PATHS.rootCert), 'utf8'));
  return { cert, key: await importPrivateKeyPem(readFileSync(keyFile, 'utf8'), passphrase) };
}

t.test('when an older certificate of a revoked issuing CA is put back in place then it is not renewed', async (t) => {
  // What a ceremony before the fix left: root CRLs (file and audit entry) listing only the renewed serial.
  const drill = join(dir, 'drill-older');
  cpSync(dataDir, drill, { recursive: true });
  const unrevoked = readFileSync(join(drill, PATHS.rootCrl), 'utf8');
  const root = await rootOf(drill, init.ca.rootKeyFile, init.ca.rootKeyPassphrase);
  const renewed = Certificate.fromPem(readFileSync(join(drill, PATHS.issuingCert), 'utf8'));
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const crl = await createRootCrl({ cert: root.cert, key: root.key, crlNumber: 50n, thisUpdate: now, revoked: [{ serialNumber: renewed.serialNumber, revocationDate: now, reason: 'keyCompromise' }] });
  writeFileSync(join(drill, PATHS.rootCrl), crl.pem);
  const db = await Db.open(join(drill, PATHS.vault, 'vault.db'));
  try {
    const log = await AuditLog.open(db);
    const data = { crlNumber: 50, thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate.toISOString(), revoked: [renewed.serialNumber], issuingRevoked: true, rootKeySpkiSha256: 'x' };
    await log.append([{ type: 'ca.root-crl.signed', actor: 'system', data }]);
  } finally {
    await db.close();
  }
  writeFileSync(join(drill, PATHS.issuingCert), before.issuing);

  const r = await renew(drill, ['--passphrase-file', passFile]);
  t.equal(r.code, 1, r.stdout);
  t.match(logLine(r.stderr), { errorCode: 'ISSUING_CA_REVOKED', msg: new RegExp(`root CRL 50 revokes the issuing CA \\(${renewed.serialNumber}, a certificate it had before`) });
  writeFileSync(join(drill, PATHS.rootCrl), unrevoked);
  const older = await renew(drill, ['--passphrase-file', passFile]);
  t.equal(older.code, 1, older.stdout);
  t.match(logLine(older.stderr), { errorCode: 'ISSUING_CA_REVOKED', msg: /root CRL 50 \(audit log\)/ });
  t.equal(readFileSync(join(drill, PATHS.issuingCert), 'utf8'), before.issuing, 'untouched');
});

t.test('when a certificate for a revoked issuing key, of a serial never recorded, is put in place then it is not renewed', async (t) => {
  const fresh = join(dir, 'fresh');
  const made = await initAppliance({ dataDir: fresh, listen: '127.0.0.1:0', config: { argon2: TEST_ARGON2 } });
  const freshPass = join(dir, 'fresh-pass.txt');
  writeFileSync(freshPass, `${made.ca.rootKeyPassphrase}\n`, { mode: 0o600 });
  const unrevoked = readFileSync(join(fresh, PATHS.rootCrl), 'utf8');
  const revoke = await runServer(['sign-root-crl', '--data', fresh, '--root-key', made.ca.rootKeyFile, '--passphrase-file', freshPass, '--revoke-issuing', '--yes'], {}, 90_000);
  t.equal(revoke.code, 0, revoke.stderr);
  // The root key made another certificate for the revoked key outside any ceremony (no audit entry).
  const root = await rootOf(fresh, made.ca.rootKeyFile, made.ca.rootKeyPassphrase);
  const other = await renewIssuingCa({ root, issuing: Certificate.fromPem(readFileSync(join(fresh, PATHS.issuingCert), 'utf8')), validityDays: 100 });
  writeFileSync(join(fresh, PATHS.issuingCert), other.pem);
  writeFileSync(join(fresh, PATHS.rootCrl), unrevoked);
  const r = await runServer(['renew-issuing', '--data', fresh, '--root-key', made.ca.rootKeyFile, '--passphrase-file', freshPass], {}, 90_000);
  t.equal(r.code, 1, r.stdout);
  t.match(logLine(r.stderr), { errorCode: 'ISSUING_CA_REVOKED', msg: /audit log: the key/ });
  t.equal(readFileSync(join(fresh, PATHS.issuingCert), 'utf8'), other.pem, 'untouched');
});
