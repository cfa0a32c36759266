/**
 * Issue 5 (messaging) with the built CLI, evidence and deletion: an exported package verifies
 * with the real openssl and with `sigil verify --package`, and both refuse it after a one-byte
 * change of the header; `sigil verify <id>` checks a message online; the sender deletes a
 * message (confirmation required without a terminal) and it is gone for the reader.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';
import { forgetKeptRootCrl } from './helpers/root-crl.js';
import { cliUser } from './helpers/users.js';

// The appliance with the messaging routes mounted as the shell mounts them.
const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-msg-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');

let firstId = '';
await t.test('when alee sends bkim a message then it is there to export', async (t) => {
  const sent = await alee.cli.json(['send', 'bkim'], { input: 'The meeting moves to 14:00' });
  firstId = sent.id;
  t.match(firstId, /^[A-Za-z0-9_-]{22}$/);
});

await t.test('when the sender deletes a message then it is gone for the reader; without --yes and no terminal it is refused', async (t) => {
  const sent = await alee.cli.json(['send', 'bkim'], { input: 'sent to the wrong person' });
  const noYes = await alee.cli.run(['delete', sent.id]);
  t.equal(noYes.code, 2, noYes.stderr);
  const both = await alee.cli.run(['delete', sent.id, '--conversation', 'bkim', '--yes']);
  t.equal(both.code, 2);
  const del = await alee.cli.json(['delete', sent.id, '--reason', 'wrong person', '--yes']);
  t.match(del, { deletedBy: 'alee', reason: 'wrong person', count: 1 });
  const j = await bkim.cli.json(['read', 'alee', '--limit', '200']);
  t.notOk(j.messages.some((m: { id: string }) => m.id === sent.id));
  const notMine = await bkim.cli.run(['delete', firstId, '--yes']);
  t.equal(notMine.code, 1, 'only the sender (or an officer) deletes a message');
});

await t.test('when an exported package is checked with openssl then it verifies, and fails after a one-byte change', async (t) => {
  const out = join(dir, 'evidence');
  const ex = await bkim.cli.json(['export', firstId, '--out', out]);
  t.same(ex.files, ['header.json', 'signature.der', 'chain.pem', 'crl.pem', 'root-crl.pem', 'ca-and-crl.pem', 'message.json', 'README.txt']);
  t.equal(ex.rootCrl, true);
  if (process.platform !== 'win32') {
    t.same(ex.files.map((f: string) => statSync(join(out, f)).mode & 0o777), ex.files.map(() => 0o600), 'every file of the package is the exporter’s alone');
  }
  const readme = readFileSync(join(out, 'README.txt'), 'utf8');
  const command = /^ {2}(openssl cms -verify .*)$/m.exec(readme)?.[1];
  t.ok(command, 'the README names the command');
  t.match(command, / -crl_check_all /, 'revocation checked for the whole chain: the root CRL covers the issuing CA');
  t.equal(ex.command, command);
  // ca-and-crl.pem: the CAs, the issuing CA's CRL and the root's (the one GET /v1/crl/root serves).
  const rootCrl = (await app.request('/v1/crl/root')).body.crl as string;
  t.equal(readFileSync(join(out, 'root-crl.pem'), 'utf8'), rootCrl);
  t.ok(readFileSync(join(out, 'ca-and-crl.pem'), 'utf8').includes(rootCrl.trimEnd()), 'ca-and-crl.pem holds the root CRL');
  t.notMatch(readFileSync(join(out, 'header.json'), 'utf8'), /meeting/, 'the package carries no body text');
  const argv = (command as string).split(' ').slice(1);
  const good = spawnSync('openssl', argv, { cwd: out, encoding: 'utf8' });
  t.equal(good.status, 0, good.stderr);
  t.match(good.stderr, /Verification successful/);
  const ok = await bkim.cli.json(['verify', '--package', out]);
  t.match(ok, { verified: true, signer: 'alee', label: 'secret', bodyChecked: false });
  const online = await bkim.cli.json(['verify', firstId]);
  t.match(online, { verified: true, bodyChecked: true });

  const header = readFileSync(join(out, 'header.json'));
  const i = header.indexOf('"sentAt":"') + 12;
  header[i] = header[i] === 0x30 ? 0x31 : 0x30;
  writeFileSync(join(out, 'header.json'), header);
  const bad = spawnSync('openssl', argv, { cwd: out, encoding: 'utf8' });
  t.not(bad.status, 0, 'openssl refuses the changed header');
  const local = await bkim.cli.run(['verify', '--package', out]);
  t.equal(local.code, 3);
  t.match(local.stdout, /^!! VERIFICATION FAILED: digest-mismatch/m);
  t.equal(local.stderr.trim().split('\n').length, 1, 'one error line');
  // openssl itself agrees on the chain: the signer certificate verifies against the exported CAs,
  // for the whole chain.
  execFileSync('openssl', ['verify', '-CAfile', join(out, 'ca-and-crl.pem'), '-crl_check_all', join(dir, 'alee', 'cert.pem')], { stdio: 'pipe' });
  // Without the root CRL (what packages held before), -crl_check_all cannot check the issuing CA.
  const issuingOnly = join(dir, 'ca-and-issuing-crl.pem');
  writeFileSync(issuingOnly, readFileSync(join(out, 'chain.pem'), 'utf8').split(/(?<=-----END CERTIFICATE-----\n)/).slice(1).join('') + readFileSync(join(out, 'crl.pem'), 'utf8'));
  const partial = spawnSync('openssl', ['verify', '-CAfile', issuingOnly, '-crl_check_all', join(dir, 'alee', 'cert.pem')], { encoding: 'utf8' });
  t.not(partial.status, 0);
  t.match(partial.stdout + partial.stderr, /unable to get certificate CRL/);
});

await t.test('when the appliance has no root CRL (initialised before them) then the package falls back to -crl_check and says why', async (t) => {
  const file = join(app.dataDir, 'ca', 'root-crl.pem');
  renameSync(file, `${file}.away`);
  t.teardown(() => renameSync(`${file}.away`, file));
  // A profile that never met the appliance's root CRL: one that did keeps judging by it (verify-root-crl.test.ts).
  forgetKeptRootCrl(t, bkim.cli);
  const out = join(dir, 'evidence-no-root-crl');
  const r = await bkim.cli.run(['export', firstId, '--out', out]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /no root CRL.*-crl_check \(signer only\)/);
  t.notOk(existsSync(join(out, 'root-crl.pem')));
  const readme = readFileSync(join(out, 'README.txt'), 'utf8');
  const command = /^ {2}(openssl cms -verify .*)$/m.exec(readme)?.[1] as string;
  t.match(command, / -crl_check /);
  t.notMatch(command, /crl_check_all/);
  t.match(readme, /NOTE: the appliance had no root CRL/);
  const good = spawnSync('openssl', command.split(' ').slice(1), { cwd: out, encoding: 'utf8' });
  t.equal(good.status, 0, good.stderr);
});

await t.test('when the signer is revoked after sending then the message still verifies as signed before revocation', async (t) => {
  const officer = { token: app.officer.token };
  const serial = alee.user.cert.serialNumber;
  const rev = await app.request(`/v1/certificates/${serial}/revoke`, { token: officer.token, body: { reason: 'superseded' } });
  t.equal(rev.status, 200, JSON.stringify(rev.body));
  const pub = await app.request('/v1/crl', { token: officer.token, body: {} });
  t.equal(pub.status, 200, JSON.stringify(pub.body));
  const j = await bkim.cli.json(['verify', firstId]);
  t.match(j, { verified: true, signer: 'alee', revokedLater: { reason: 'superseded', at: /^\d{4}-/ } });
  const human = await bkim.cli.run(['read', 'alee']);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /signed before revocation \(revoked \d{4}-.*superseded\)/);
  const gone = await alee.cli.run(['send', 'bkim'], { input: 'after revocation' });
  t.equal(gone.code, 4, 'a revoked signer can no longer send');
});
