/**
 * The root CRL end to end on a real appliance (real TLS) and the built `sigil-server` binary:
 * init signs number 1 (and audits it); `openssl verify -crl_check_all` needs it; `GET /v1/crl/root` serves it;
 * the ceremony `sign-root-crl` (wrong passphrase, wrong key, old data dir, next number, audit
 * entry, `--revoke-issuing --yes`, revocations kept when the file is lost or put back older) run as
 * a child process beside the running server; status and
 * check warn before its nextUpdate.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Certificate, Crl } from '../../pki/index.js';
import { initAppliance } from '../../server/init.js';
import { PATHS } from '../../server/appliance.js';
import { applianceStatus, checkAppliance, claimDataDir } from '../../server/ops/index.js';
import { startTestAppliance, TEST_ARGON2 } from '../helpers/appliance.js';
import { appRootCrl, rootCrlOfAnotherRoot } from '../client-cli/messaging/helpers/root-crl.js';
import { runServer, SERVER_MAIN } from '../helpers/server-process.js';
import { tmpDir } from '../helpers/tmp.js';

const DAY = 86_400_000;
// The drill below revokes the issuing CA; later cases still ask the server (the watch that then
// refuses them is tested in test/server/certs/issuing-ca-revoked.test.ts).
const app = await startTestAppliance({ rootCrlCheckEveryMs: 24 * 3_600_000 });
t.teardown(() => app.stop());
const dir = tmpDir(t, 'sigil-root-crl-');
const rootCrlFile = join(app.dataDir, PATHS.rootCrl);
const passFile = join(dir, 'pass.txt');
writeFileSync(passFile, `${app.init.ca.rootKeyPassphrase}\n`, { mode: 0o600 });
const tlsCert = join(app.dataDir, PATHS.tlsCert);
const officerCert = join(dir, 'officer.pem');
writeFileSync(officerCert, app.officer.certPem);

/** The issuing CA's CRL as the appliance serves it. */
async function issuingCrl(): Promise<string> {
  const r = await app.request('/v1/crl');
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return r.body.crl as string;
}

/** openssl verify -crl_check_all with root + issuing + the given CRLs in one -CAfile. */
function verifyAll(name: string, crls: string[], cert: string): { code: number | null; out: string } {
  const caFile = join(dir, name);
  writeFileSync(caFile, readFileSync(join(app.dataDir, PATHS.rootCert), 'utf8') + readFileSync(join(app.dataDir, PATHS.issuingCert), 'utf8') + crls.join(''));
  const r = spawnSync('openssl', ['verify', '-crl_check_all', '-CAfile', caFile, cert], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

const ceremony = (args: string[]) => runServer(['sign-root-crl', '--data', app.dataDir, ...args], {}, 90_000);
const logLine = (stderr: string) => JSON.parse(stderr.trim()) as { msg: string; errorCode?: string };

t.test('when the appliance is initialised then the root CRL is number 1, public, and openssl -crl_check_all accepts its certificates', async (t) => {
  t.equal(app.init.ca.rootCrl, rootCrlFile);
  t.equal(statSync(rootCrlFile).mode & 0o777, 0o644, 'mode of the other public files');
  const crl = Crl.fromPem(readFileSync(rootCrlFile, 'utf8'));
  t.equal(crl.crlNumber, 1n);
  t.equal(crl.revoked.length, 0);
  t.equal(crl.nextUpdate.getTime() - crl.thisUpdate.getTime(), 365 * DAY);
  t.same(await crl.verifySignature(app.appliance.rootCert), { ok: true });
  const signed = (await app.appliance.auditLog.entries(0, await app.appliance.auditLog.size())).filter((e) => e.type === 'ca.root-crl.signed');
  t.match(signed, [{ actor: 'system', data: { crlNumber: 1, revoked: [], issuingRevoked: false, nextUpdate: crl.nextUpdate.toISOString() } }], 'init records it in the audit log');

  const crls = [readFileSync(rootCrlFile, 'utf8'), await issuingCrl()];
  for (const cert of [tlsCert, officerCert]) {
    const ok = verifyAll('all.pem', crls, cert);
    t.equal(ok.code, 0, ok.out);
    t.match(ok.out, /: OK/);
    // What auditors had before: the issuing CA's CRL only.
    const old = verifyAll('issuing-only.pem', crls.slice(1), cert);
    t.not(old.code, 0);
    t.match(old.out, /unable to get certificate CRL/);
  }
});

t.test('when GET /v1/crl/root is asked without a session then it answers the file in the CRL route\'s shape', async (t) => {
  const r = await app.request('/v1/crl/root');
  t.equal(r.status, 200, JSON.stringify(r.body));
  const crl = Crl.fromPem(readFileSync(rootCrlFile, 'utf8'));
  t.same(r.body, { crl: crl.pem, crlNumber: 1, thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate.toISOString() });
});

t.test('when an appliance from before root CRLs holds its first ceremony then it gets number 1', async (t) => {
  const oldDir = join(dir, 'old-appliance');
  const init = await initAppliance({ dataDir: oldDir, rootCrl: false, config: { argon2: TEST_ARGON2 } });
  t.notOk(existsSync(join(oldDir, PATHS.rootCrl)), 'made as before root CRLs');
  t.equal(init.ca.rootCrl, undefined);
  const s = await applianceStatus({ dataDir: oldDir });
  t.equal(s.rootCrl, null);
  t.ok(s.warnings.some((w) => /no root CRL.*sigil-server sign-root-crl/.test(w)), s.warnings.join('\n'));
  const oldPass = join(dir, 'old-pass.txt');
  writeFileSync(oldPass, `${init.ca.rootKeyPassphrase}\n`);
  const r = await runServer(['sign-root-crl', '--data', oldDir, '--root-key', init.ca.rootKeyFile, '--passphrase-file', oldPass, '--json'], {}, 90_000);
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { crlNumber: 1, previousCrlNumber: null, revoked: [], issuingRevoked: false });
  t.equal(statSync(join(oldDir, PATHS.rootCrl)).mode & 0o777, 0o644);
  const issuing = readFileSync(join(oldDir, PATHS.issuingCert), 'utf8');
  t.equal(Crl.fromPem(readFileSync(join(oldDir, PATHS.rootCrl), 'utf8')).find(Certificate.fromPem(issuing).serialNumber), undefined);
  t.notOk((await applianceStatus({ dataDir: oldDir })).warnings.some((w) => /root CRL/.test(w)));
});

t.test('when the root CRL file is lost then the route says 404, and the next ceremony continues the numbers from the audit log', async (t) => {
  renameSync(rootCrlFile, join(dir, 'init-root-crl.pem'));
  const missing = await app.request('/v1/crl/root');
  t.equal(missing.status, 404);
  t.equal(missing.body.error.code, 'NOT_FOUND');
  const r = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { crlNumber: 2, previousCrlNumber: null }, 'init\'s number 1 is in the audit log: never reused');
  const served = await app.request('/v1/crl/root');
  t.equal(served.body.crlNumber, 2, 'served without a restart');
  t.equal(statSync(rootCrlFile).mode & 0o777, 0o644);
});

t.test('when the passphrase is wrong or the key is not the root\'s then nothing is signed, with one line and exit 1', async (t) => {
  const before = readFileSync(rootCrlFile, 'utf8');
  const wrongPass = join(dir, 'wrong-pass.txt');
  writeFileSync(wrongPass, 'not the passphrase\n');
  const bad = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', wrongPass]);
  t.equal(bad.code, 1);
  t.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
  t.match(logLine(bad.stderr), { errorCode: 'ROOT_KEY_PASSPHRASE_WRONG', msg: /passphrase does not open the root key/ });
  t.notMatch(bad.stderr, /not the passphrase/, 'the passphrase is never echoed');

  const otherKey = join(dir, 'other-key.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-aes-256-cbc', '-pass', 'pass:other-pass', '-out', otherKey]);
  const otherPass = join(dir, 'other-pass.txt');
  writeFileSync(otherPass, 'other-pass\n');
  const mismatch = await ceremony(['--root-key', otherKey, '--passphrase-file', otherPass]);
  t.equal(mismatch.code, 1);
  t.equal(mismatch.stderr.trim().split('\n').length, 1);
  t.match(logLine(mismatch.stderr), { errorCode: 'ROOT_KEY_MISMATCH', msg: /not the root CA's/ });

  const revokeNoYes = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--revoke-issuing']);
  t.equal(revokeNoYes.code, 2, '--revoke-issuing needs --yes');
  t.match(logLine(revokeNoYes.stderr).msg, /--yes/);
  const badDays = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--days', '400']);
  t.equal(badDays.code, 2);
  t.equal(readFileSync(rootCrlFile, 'utf8'), before, 'the root CRL is unchanged');
});

t.test('when the root key holder signs again then the number increases, the audit log records it, and the passphrase may come from stdin', async (t) => {
  const sizeBefore = await app.appliance.auditLog.size();
  const r = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--days', '200', '--json']);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.match(out, { crlNumber: 3, previousCrlNumber: 2, issuingRevoked: false });
  t.equal(Date.parse(out.nextUpdate) - Date.parse(out.thisUpdate), 200 * DAY);
  const [entry] = await app.appliance.auditLog.entries(out.auditSeq, out.auditSeq + 1);
  t.match(entry, { type: 'ca.root-crl.signed', actor: 'system', data: { crlNumber: 3, issuingRevoked: false, revoked: [] } });
  t.ok((await app.appliance.auditLog.size()) > sizeBefore);
  // The running server appends after the ceremony's entry, and the tree stays whole.
  const pub = await app.request('/v1/crl', { method: 'POST', token: app.officer.token, body: {} });
  t.equal(pub.status, 200, JSON.stringify(pub.body));
  t.match(await app.appliance.auditLog.verify(), { ok: true });

  const piped = spawnSync(process.execPath, [SERVER_MAIN, 'sign-root-crl', '--data', app.dataDir, '--root-key', app.init.ca.rootKeyFile, '--json'], {
    input: `${app.init.ca.rootKeyPassphrase}\n`,
    encoding: 'utf8',
  });
  t.equal(piped.status, 0, piped.stderr);
  t.equal(JSON.parse(piped.stdout).crlNumber, 4);
  t.equal((await app.request('/v1/crl/root')).body.crlNumber, 4);
});

t.test('when the issuing CA is revoked at a drill then openssl -crl_check_all refuses its certificates, and a later CRL keeps it revoked', async (t) => {
  const r = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--revoke-issuing', '--yes', '--json']);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.match(out, { crlNumber: 5, issuingRevoked: true, revoked: [{ serialNumber: app.appliance.issuingCert.serialNumber, reason: 'keyCompromise' }] });
  const crls = [readFileSync(rootCrlFile, 'utf8'), await issuingCrl()];
  for (const cert of [tlsCert, officerCert]) {
    const bad = verifyAll('revoked.pem', crls, cert);
    t.not(bad.code, 0);
    t.match(bad.out, /certificate revoked/);
  }
  const again = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--json']);
  t.match(JSON.parse(again.stdout), { crlNumber: 6, issuingRevoked: true });
  const s = await applianceStatus({ dataDir: app.dataDir });
  t.ok(s.warnings.some((w) => /revokes the issuing CA/.test(w)));
});

t.test('when the root CRL file is lost or put back older after the issuing CA was revoked then the next ceremony keeps it revoked', async (t) => {
  const serial = app.appliance.issuingCert.serialNumber;
  const revokedAt = Crl.fromPem(readFileSync(rootCrlFile, 'utf8')).find(serial)?.revocationDate.toISOString();
  t.ok(revokedAt, 'revoked by the drill above');
  renameSync(rootCrlFile, join(dir, 'revoking-root-crl.pem'));
  const lost = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile]);
  t.equal(lost.code, 0, lost.stderr);
  t.match(lost.stdout, /Root CRL 7 signed \(none was in place; number and revocations continue from the audit log, last 6\)/);
  t.match(lost.stdout, new RegExp(`carried over from the audit log .*revocation is never undone\\): ${serial}`));
  t.match(lost.stdout, /THE ISSUING CA IS REVOKED/);
  const crl7 = Crl.fromPem(readFileSync(rootCrlFile, 'utf8'));
  t.equal(crl7.crlNumber, 7n);
  t.match(crl7.find(serial), { reason: 'keyCompromise' });
  t.equal(crl7.find(serial)?.revocationDate.toISOString(), revokedAt, 'the date it was revoked, not the date of this ceremony');

  copyFileSync(join(dir, 'init-root-crl.pem'), rootCrlFile); // number 1, from before the revocation
  const older = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--json']);
  t.equal(older.code, 0, older.stderr);
  t.match(JSON.parse(older.stdout), { crlNumber: 8, previousCrlNumber: 1, issuingRevoked: true, carriedOver: [serial], revoked: [{ serialNumber: serial, revocationDate: revokedAt }] });
});

t.test('when the root CRL file is not the root’s then status and check say so and do not report what it claims', async (t) => {
  // Another root's CRL "revoking" this issuing CA: the server's watch ignores it, so must status.
  const forged = await rootCrlOfAnotherRoot(app.appliance.issuingCert.serialNumber);
  appRootCrl(app).replace(t, forged); // the original comes back when the test ends
  const masterKey = { keyFilePath: join(app.dataDir, PATHS.masterKeyFile) };
  for (const [what, pem, why] of [
    ['another root’s CRL', forged, /is not signed by the root CA/],
    ['garbage', 'not a CRL', /is not a readable CRL/],
  ] as const) {
    writeFileSync(rootCrlFile, pem);
    const s = await applianceStatus({ dataDir: app.dataDir });
    t.equal(s.rootCrl, null, `${what}: no root CRL state`);
    const warning = s.warnings.find((w) => /root-crl\.pem/.test(w)) ?? '';
    t.match(warning, why, what);
    t.match(warning, /the server ignores it.*sign-root-crl/);
    t.notOk(s.warnings.some((w) => /revokes the issuing CA/.test(w)), `${what}: no claim of a revoked issuing CA`);
    const item = (await checkAppliance({ dataDir: app.dataDir, masterKey })).items.find((i) => i.name === 'root-crl');
    t.match(item, { status: 'warn', detail: why });
  }
});

t.test('when the root CRL nears or passes its nextUpdate then status and check warn and name the ceremony', async (t) => {
  // A fresh root CRL (the drill's revocation would warn on its own): the init one, put back.
  copyFileSync(join(dir, 'init-root-crl.pem'), rootCrlFile);
  const crl = Crl.fromPem(readFileSync(rootCrlFile, 'utf8'));
  const at = (ms: number) => () => new Date(crl.nextUpdate.getTime() - ms);
  const fine = await applianceStatus({ dataDir: app.dataDir, now: at(40 * DAY) });
  t.match(fine.rootCrl, { number: 1, warn: false });
  t.notOk(fine.warnings.some((w) => /root CRL/.test(w)), fine.warnings.join('\n'));
  const soon = await applianceStatus({ dataDir: app.dataDir, now: at(10 * DAY) });
  t.match(soon.rootCrl, { warn: true, daysLeft: 10 });
  t.ok(soon.warnings.some((w) => /root CRL 1 reaches nextUpdate in 10 days.*sigil-server sign-root-crl/.test(w)), soon.warnings.join('\n'));
  const past = await applianceStatus({ dataDir: app.dataDir, now: at(-DAY) });
  t.ok(past.warnings.some((w) => /root CRL 1 is stale.*sign-root-crl/.test(w)));

  const masterKey = { keyFilePath: join(app.dataDir, PATHS.masterKeyFile) };
  const item = async (ms: number) => (await checkAppliance({ dataDir: app.dataDir, masterKey, now: at(ms) })).items.find((i) => i.name === 'root-crl');
  t.match(await item(40 * DAY), { status: 'pass' });
  t.match(await item(10 * DAY), { status: 'warn', detail: /sign-root-crl/ });
});

t.test('when sign-root-crl is asked for help or given no appliance then it documents itself, and refuses with exit 2', async (t) => {
  const help = await runServer(['sign-root-crl', '--help']);
  t.equal(help.code, 0);
  for (const section of ['POSITIONAL ARGUMENTS', 'EXAMPLES', 'EXIT CODES', 'sigil-server sign-root-crl', '--revoke-issuing', '--passphrase-file']) t.match(help.stdout, section);
  const top = await runServer(['--help']);
  t.match(top.stdout, /sign-root-crl/);
  const none = await runServer(['sign-root-crl', '--data', join(dir, 'nothing-here'), '--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile]);
  t.equal(none.code, 2, none.stderr);
  t.match(logLine(none.stderr), { errorCode: 'APPLIANCE_NOT_INITIALISED' });
});

t.test('when another command holds the data directory then the ceremony is refused (OPS_DATA_IN_USE) and signs nothing', async (t) => {
  const before = readFileSync(rootCrlFile, 'utf8');
  const claim = await claimDataDir(app.dataDir, 'backup', { besideServer: true, sweep: false });
  try {
    const r = await ceremony(['--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile]);
    t.equal(r.code, 1, r.stderr);
    t.match(logLine(r.stderr), { errorCode: 'OPS_DATA_IN_USE', msg: /sigil-server backup/ });
  } finally {
    claim.release();
  }
  t.equal(readFileSync(rootCrlFile, 'utf8'), before);
  t.notOk(readdirSync(join(app.dataDir, 'ca')).some((n) => n.endsWith('.tmp')), 'no temp file left');
});
