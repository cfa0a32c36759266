/**
 * `sigil-server status` on a real appliance, the run file (running, stopped, stale, reused pid),
 * and the help of every ops command.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { applianceStatus, claimRunFile, readRunState, RUN_FILE } from '../../../server/ops/index.js';
import { tmpDir } from '../../helpers/tmp.js';
import { live, runOps } from './fixture.js';

const DAY = 24 * 3600 * 1000;

t.test('when the appliance runs then status reports uptime, counts, certificate expiry and the CRL, and warns in time', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir } = L;
  const conv = (await h.as(alice)('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  await L.send(alice, conv, 'one message');

  const r = await runOps(['status', '--data', dataDir, '--json']);
  t.equal(r.code, 0, r.stderr);
  const s = r.json();
  t.equal(s.version, JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
  t.match(s.server, { running: true, pid: process.pid, url: h.app.url });
  t.type(s.server.uptimeSeconds, 'number');
  t.match(s.counts, { users: 3, activeCertificates: 3, conversations: 1, messages: 1, files: 0 });
  t.ok(s.counts.auditEntries > 0);
  t.same(s.certificates.map((c: { name: string }) => c.name), ['root-ca', 'issuing-ca', 'tls', 'audit']);
  for (const c of s.certificates) t.ok(c.daysLeft > 30 && !c.warn, `${c.name} is far from expiry`);

  const crlBefore = s.crl;
  const pub = await h.app.request('/v1/crl', { method: 'POST', token: h.app.officer.token, body: {} });
  t.equal(pub.status, 200, JSON.stringify(pub.body));
  const after = await applianceStatus({ dataDir });
  t.equal(after.crl?.number, pub.body.crlNumber);
  t.not(after.crl?.number, crlBefore?.number);
  t.equal(after.crl?.nextUpdate, pub.body.nextUpdate);
  t.notOk(after.crl?.warn);

  // The clock moves: exactly 10 days before the TLS certificate ends, and past the CRL's nextUpdate.
  const tls = after.certificates.find((c) => c.name === 'tls')!;
  const late = await applianceStatus({ dataDir, now: () => new Date(Date.parse(tls.notAfter) - 10 * DAY) });
  t.match(late.certificates.find((c) => c.name === 'tls'), { warn: true, daysLeft: 10 });
  t.ok(late.warnings.some((w) => w.startsWith('tls certificate expires in 10 days')), late.warnings.join('\n'));
  t.match(late.crl, { warn: true });
  t.ok(late.warnings.some((w) => /CRL \d+ is stale/.test(w)));
  const soon = await applianceStatus({ dataDir, now: () => new Date(Date.parse(after.crl!.nextUpdate) - 3600_000 * 5) });
  t.match(soon.crl, { warn: true, hoursLeft: 5 });
  const expired = await applianceStatus({ dataDir, now: () => new Date(Date.parse(tls.notAfter) + DAY) });
  t.ok(expired.warnings.some((w) => w.startsWith('tls certificate expired')));

  const text = await runOps(['status', '--data', dataDir]);
  t.match(text.stdout, /server\s+running, pid \d+/);
  t.match(text.stdout, /3 users, 3 active certificates, 1 conversations, 1 messages/);

  await L.stopKeepingData();
  const vaultDb = join(dataDir, 'vault', 'vault.db');
  const digest = () => createHash('sha256').update(readFileSync(vaultDb)).digest('hex');
  const before = digest();
  const stopped = await runOps(['status', '--data', dataDir, '--json']);
  t.same(stopped.json().server, { running: false });
  t.equal(digest(), before, 'status reads only: vault.db is unchanged');
  t.match((await runOps(['status', '--data', dataDir])).stdout, /server\s+not running/);

  renameSync(vaultDb, `${vaultDb}.away`);
  const noDb = await runOps(['status', '--data', dataDir]);
  t.equal(noDb.code, 1);
  t.equal(noDb.error?.code, 'OPS_DATA_MISSING');
  renameSync(`${vaultDb}.away`, vaultDb);
});

t.test('when the run file names a dead or reused pid then the server counts as stopped and status warns', async (t) => {
  const dir = tmpDir(t, 'sigil-run-');
  t.same(readRunState(dir), { running: false, reason: 'no-run-file' });
  const gone = spawnSync(process.execPath, ['-e', '']).pid;
  const stale = claimRunFile(dir, { pid: gone });
  t.match(readRunState(dir), { running: false, reason: 'process-gone', stale: { pid: gone } });
  const mine = claimRunFile(dir); // a stale file is replaced
  t.match(readRunState(dir), { running: true, info: { pid: process.pid } });
  t.throws(() => claimRunFile(dir), { code: 'OPS_SERVER_RUNNING' }, 'a second live server is refused');
  stale.release(); // not ours any more: must not remove the live server's file
  t.match(readRunState(dir), { running: true });
  mine.release();
  t.same(readRunState(dir), { running: false, reason: 'no-run-file' });

  const info = { pid: process.pid, startedAt: new Date().toISOString(), procStart: '1' };
  writeFileSync(join(dir, RUN_FILE), JSON.stringify(info));
  t.match(readRunState(dir), { running: false, reason: 'pid-reused' });
  writeFileSync(join(dir, RUN_FILE), '{not json');
  t.match(readRunState(dir), { running: false, reason: 'unreadable' });
});

t.test('when status runs on a stopped appliance with a stale run file then it says so', async (t) => {
  const L = await live(t);
  await L.stopKeepingData();
  const gone = spawnSync(process.execPath, ['-e', '']).pid;
  claimRunFile(L.dataDir, { pid: gone });
  const s = await applianceStatus({ dataDir: L.dataDir });
  t.match(s.server, { running: false, staleRunFile: { pid: gone, reason: 'process-gone' } });
  t.ok(s.warnings.some((w) => w.startsWith('stale run file')));
  const r = await runOps(['status', '--data', join(L.dataDir, 'nope')]);
  t.equal(r.code, 2);
  t.equal(r.error?.code, 'APPLIANCE_NOT_INITIALISED');
});

// Fifteenth session: check and start said when a committed rotation's clean-up waits, status did
// not. status needs no master key, so it goes by the rotation's files (their names).
t.test('when a master-key rotation is unfinished or its clean-up waits then status says what to run', async (t) => {
  const L = await live(t);
  await L.stopKeepingData();
  const vault = join(L.dataDir, 'vault');
  t.notOk((await applianceStatus({ dataDir: L.dataDir })).warnings.some((w) => w.includes('rotation')), 'no rotation: nothing said');
  copyFileSync(join(vault, 'vault-key.json'), join(vault, 'vault-key.prev.json'));
  const waiting = await applianceStatus({ dataDir: L.dataDir });
  t.ok(waiting.warnings.some((w) => /rotation was committed but its clean-up .* did not finish: stop the server and run the same rotate-master-key command again/.test(w)), waiting.warnings.join('\n'));
  copyFileSync(join(vault, 'vault-key.json'), join(vault, 'vault-key.next.json'));
  const pending = await applianceStatus({ dataDir: L.dataDir });
  t.ok(pending.warnings.some((w) => /rotation is unfinished \(vault-key\.next\.json\)/.test(w)), pending.warnings.join('\n'));
  t.notOk(pending.warnings.some((w) => w.includes('clean-up')), 'an unfinished rotation is said once, as unfinished');
});

t.test('when the disk reserve is missing then status says new data waits for space', async (t) => {
  const L = await live(t);
  await L.stopKeepingData();
  const said = (r: { warnings: string[] }) => r.warnings.some((w) => w.includes('disk reserve'));
  t.notOk(said(await applianceStatus({ dataDir: L.dataDir })), 'made at start (default config): nothing said');
  rmSync(join(L.dataDir, 'vault', 'disk-reserve'));
  const missing = await applianceStatus({ dataDir: L.dataDir });
  t.ok(missing.warnings.some((w) => /disk reserve \(vault\/disk-reserve\) is missing: .* answer 507 until \d+ bytes are free/.test(w)), missing.warnings.join('\n'));
});

t.test('when asked for help then every ops command shows POSITIONAL ARGUMENTS, EXAMPLES and EXIT CODES', async (t) => {
  for (const cmd of ['backup', 'restore', 'check', 'status', 'rotate-master-key', 'repack']) {
    const r = await runOps([cmd, '--help']);
    t.equal(r.code, 0, cmd);
    for (const section of ['POSITIONAL ARGUMENTS', 'EXAMPLES', 'EXIT CODES']) t.match(r.stdout, section, `${cmd}: ${section}`);
    t.match(r.stdout, `sigil-server ${cmd}`, `${cmd}: an example runs it`);
  }
  const unknown = await runOps(['backup', '--data', '.', '--out', 'x', '--bogus']);
  t.equal(unknown.code, 2, 'an unknown flag is a usage error');
});
