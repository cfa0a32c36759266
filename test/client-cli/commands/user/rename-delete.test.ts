/**
 * `sigil user rename` and `sigil user delete` with the built CLI against a real appliance on
 * 127.0.0.1 over TLS: names changed (both, one, none → usage, too long → the appliance's 400), a
 * rank given at creation, changed and removed, an
 * account from before the 64-character cap renamed out of ACCOUNT_NAME_TOO_LONG and then certified,
 * a never-certified account deleted (after --yes), a certified one kept (409 ACCOUNT_IN_USE), and
 * a non-officer refused.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { PATHS } from '../../../../server/index.js';
import { startTestAppliance } from '../../../helpers/appliance.js';
import { profileRunner, type CliResult } from '../../../helpers/cli.js';
import { rawSql } from '../../../helpers/raw-sql.js';
import { tmpDir } from '../../../helpers/tmp.js';
import { cliUser } from '../../messaging/helpers/users.js';

const app = await startTestAppliance();
t.teardown(() => app.stop());
const dir = tmpDir(t, 'sigil-cli-user-rename-');

// The officer's profile as a workstation has it: pinned root, plain PKCS#8 key, certificate, session.
const officer = profileRunner(join(dir, 'officer'), { SIGIL_PASSWORD: app.officer.password });
const setUp = async (args: string[]): Promise<void> => {
  const r = await officer.run(args);
  if (r.code !== 0) throw new Error(`officer ${args[0]}: ${r.stderr}`);
};
await setUp(['setup', '--server', app.url, '--ca', app.init.ca.root]);
writeFileSync(join(officer.profile, 'key.p8.pem'), app.officer.keyPem, { mode: 0o600 });
writeFileSync(join(officer.profile, 'cert.pem'), app.officer.certPem, { mode: 0o644 });
await setUp(['login', '--login', app.officer.login]);
// A staff account with a certificate, logged in with its own profile.
const bkim = await cliUser(app, dir, 'bkim', 'secret');

/** One `error: …` line naming `code`, nothing on stdout, exit `exit`. */
function refused(t: Test, r: CliResult, exit: number, code: string): void {
  t.equal(r.code, exit, `exit ${exit}`);
  t.equal(r.stdout, '', 'nothing on stdout');
  t.match(r.stderr, new RegExp(`^error: .*\\(${code}\\)\\n$`), `one line with ${code}`);
}

await t.test('when the officer renames an account then the account carries the new names', async (t) => {
  await officer.json(['user', 'create', '--login', 'alee', '--name', 'Ann Lee', '--department', 'Signals', '--clearance', 'secret']);
  const both = await officer.json(['user', 'rename', 'alee', '--name', 'Anna Lee', '--department', 'Signals, Section 4']);
  t.match(both, { login: 'alee', fullName: 'Anna Lee', department: 'Signals, Section 4', clearance: 'secret' });
  const one = await officer.run(['user', 'rename', 'alee', '--department', 'Cipher']);
  t.equal(one.code, 0);
  t.match(one.stdout, /^login:\s+alee\nname:\s+Anna Lee\ndepartment:\s+Cipher\n/, 'the account as user show prints it');
  t.match(await officer.json(['user', 'show', 'alee']), { fullName: 'Anna Lee', department: 'Cipher' }, 'the other field kept');
  const same = await officer.run(['user', 'rename', 'alee', '--department', 'Cipher']);
  refused(t, same, 1, 'ACCOUNT_STATE');
});

await t.test('when a rename gives no name then it is a usage error (exit 2) and nothing is asked of the appliance', async (t) => {
  const r = await officer.run(['user', 'rename', 'alee']);
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  t.equal(r.stderr, 'error: give --name, --department, --rank or --no-rank\n');
});

await t.test('when the officer gives a rank at creation or later then the account shows it, and --no-rank removes it', async (t) => {
  const created = await officer.json(['user', 'create', '--login', 'cdoe', '--name', 'Cy Doe', '--department', 'Cipher', '--rank', 'Analyst', '--clearance', 'secret']);
  t.match(created.account, { login: 'cdoe', rank: 'Analyst' });
  const shown = await officer.run(['user', 'show', 'cdoe']);
  t.match(shown.stdout, /^department:\s+Cipher\nrank:\s+Analyst\nrole:\s+staff$/m);
  t.match(await officer.json(['user', 'rename', 'cdoe', '--rank', 'Head of unit']), { rank: 'Head of unit', fullName: 'Cy Doe' });
  const removed = await officer.json(['user', 'rename', 'cdoe', '--no-rank']);
  t.notOk('rank' in removed, 'no rank any more');
  t.notMatch((await officer.run(['user', 'show', 'cdoe'])).stdout, /^rank:/m);
  refused(t, await officer.run(['user', 'rename', 'cdoe', '--no-rank']), 1, 'ACCOUNT_STATE');
  refused(t, await officer.run(['user', 'rename', 'cdoe', '--rank', 'R'.repeat(65)]), 1, 'BAD_REQUEST');
});

await t.test('when a new name is over 64 characters then the appliance refuses it (400 BAD_REQUEST, exit 1)', async (t) => {
  const name = await officer.run(['user', 'rename', 'alee', '--name', 'N'.repeat(65)]);
  refused(t, name, 1, 'BAD_REQUEST');
  t.match(name.stderr, /fullName.*64/, "the appliance's reason: the field and its limit");
  refused(t, await officer.run(['user', 'rename', 'alee', '--department', 'D'.repeat(65)]), 1, 'BAD_REQUEST');
  t.match(await officer.json(['user', 'show', 'alee']), { fullName: 'Anna Lee', department: 'Cipher' }, 'unchanged');
});

await t.test('when an account from before the 64 cap cannot be certified then a rename lets cert issue through', async (t) => {
  // Written the way the old version did (names up to 128), with a raw SQLite connection.
  const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const at = new Date().toISOString();
  const hash = await app.appliance.hasher.hash('Old-envelope-password-1');
  await rawSql(join(app.dataDir, PATHS.vault, 'vault.db'), [
    `INSERT INTO accounts (login, full_name, department, role, clearance, status, password_hash, must_change_password, created_at, created_by)
     VALUES ('legacy', ${q('L'.repeat(100))}, 'Ops', 'staff', 'secret', 'active', ${q(hash)}, 1, ${q(at)}, 'officer')`,
    `INSERT INTO envelopes (serial, login, issued_by, issued_at, expires_at, state)
     VALUES ('ENV-${randomBytes(6).toString('hex').toUpperCase()}', 'legacy', 'officer', ${q(at)}, ${q(at)}, 'pending')`,
  ]);
  const p12 = join(dir, 'legacy.p12');
  const tooLong = await officer.run(['cert', 'issue', 'legacy', '--p12', p12]);
  refused(t, tooLong, 1, 'ACCOUNT_NAME_TOO_LONG');
  t.match(tooLong.stderr, /fullName of 100 characters/);
  t.match(await officer.json(['user', 'rename', 'legacy', '--name', 'Lena Lang']), { login: 'legacy', fullName: 'Lena Lang' });
  t.match(await officer.json(['cert', 'issue', 'legacy', '--p12', p12]), { serial: /^[0-9a-f]+$/i, file: p12 });
});

await t.test('when the officer deletes an account that never had a certificate then it asks, and with --yes it is gone', async (t) => {
  await officer.json(['user', 'create', '--login', 'typo', '--name', 'Typo Account', '--department', 'Ops', '--clearance', 'secret']);
  const unasked = await officer.run(['user', 'delete', 'typo']);
  t.equal(unasked.code, 2, 'no terminal and no --yes: usage');
  t.match(unasked.stderr, /^error: not confirmed: Delete the account typo.*add --yes.*\n$/);
  t.equal((await officer.run(['user', 'show', 'typo'])).code, 0, 'still there');
  const human = await officer.run(['user', 'delete', 'typo', '--yes']);
  t.equal(human.code, 0, human.stderr);
  t.equal(human.stdout, 'deleted: typo\n');
  refused(t, await officer.run(['user', 'show', 'typo']), 1, 'ACCOUNT_NOT_FOUND');
  await officer.json(['user', 'create', '--login', 'typo2', '--name', 'Typo Two', '--department', 'Ops', '--clearance', 'secret']);
  t.same(await officer.json(['user', 'delete', 'typo2', '--yes']), { login: 'typo2', deleted: true });
  refused(t, await officer.run(['user', 'delete', 'typo2', '--yes']), 1, 'ACCOUNT_NOT_FOUND');
});

await t.test('when the account has had a certificate then delete is refused with ACCOUNT_IN_USE (exit 1) and it stays', async (t) => {
  const r = await officer.run(['user', 'delete', 'bkim', '--yes']);
  refused(t, r, 1, 'ACCOUNT_IN_USE');
  t.match(r.stderr, /disable it instead/);
  refused(t, await officer.run(['user', 'delete', 'legacy', '--yes']), 1, 'ACCOUNT_IN_USE');
  t.equal((await officer.run(['user', 'show', 'bkim'])).code, 0);
});

await t.test('when someone who is not an officer renames or deletes then the appliance refuses (FORBIDDEN)', async (t) => {
  refused(t, await bkim.cli.run(['user', 'rename', 'alee', '--name', 'Mallory']), 1, 'FORBIDDEN');
  refused(t, await bkim.cli.run(['user', 'delete', 'alee', '--yes']), 1, 'FORBIDDEN');
  t.match(await officer.json(['user', 'show', 'alee']), { fullName: 'Anna Lee' }, 'nothing changed');
});
