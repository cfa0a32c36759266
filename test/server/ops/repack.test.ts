/**
 * `sigil-server repack` on a real appliance whose vault.db was made with 4 KiB pages (as before
 * VAULT_PAGE_SIZE): status says a repack is due, repack refuses while the server runs, rewrites the
 * file with the new page size, keeps every message readable and the audit log whole, carries no
 * deleted message over, leaves no working file, and does nothing the second time.
 */
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { claimRunFile } from '../../../server/ops/index.js';
import { VAULT_PAGE_SIZE } from '../../../server/vault/index.js';
import { scanTree } from '../../helpers/forensics.js';
import { rawSql as raw } from '../../helpers/raw-sql.js';
import { live, reopen, runOps } from './fixture.js';

t.test('when vault.db has 4 KiB pages then repack rewrites it with the vault page size and loses nothing', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir } = L;
  const A = h.as(alice);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  const kept: string[] = [];
  for (let i = 0; i < 20; i++) kept.push(await L.send(i % 2 ? alice : bob, conv, `kept ${i}: the minutes of Tuesday`));
  const doomed = await L.send(alice, conv, 'doomed: the draft that must go');
  t.equal((await L.del(alice, `/v1/messages/${doomed}`, `message:${doomed}`)).status, 200);
  await L.stopKeepingData();

  // An appliance from before VAULT_PAGE_SIZE: the same vault, rebuilt with 4 KiB pages.
  const vaultDb = join(dataDir, 'vault', 'vault.db');
  await raw(vaultDb, ['PRAGMA journal_mode = DELETE', 'PRAGMA page_size = 4096', 'VACUUM', 'PRAGMA journal_mode = WAL']);
  t.same(await raw(vaultDb, ['PRAGMA page_size']), [{ page_size: 4096 }], 'the test vault has 4 KiB pages');
  const rowsBefore = await raw(vaultDb, ['SELECT id, sealed FROM msg_messages ORDER BY id']);
  t.equal(rowsBefore.length, kept.length);

  const st = await runOps(['status', '--data', dataDir, '--json']);
  t.equal(st.code, 0, st.stderr);
  t.equal(st.json().vaultPageSize, 4096);
  t.ok(st.json().warnings.some((w: string) => /4096-byte pages.*sigil-server repack/.test(w)), 'status says a repack is due');

  const run = claimRunFile(dataDir);
  const running = await runOps(['repack', '--data', dataDir]);
  run.release();
  t.equal(running.code, 1);
  t.equal(running.error?.code, 'OPS_SERVER_RUNNING');
  t.same(await raw(vaultDb, ['PRAGMA page_size']), [{ page_size: 4096 }], 'refused: vault.db unchanged');

  const r = await runOps(['repack', '--data', dataDir, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.json(), { repacked: true, before: { pageSize: 4096 }, after: { pageSize: VAULT_PAGE_SIZE } });
  t.same(await raw(vaultDb, ['PRAGMA page_size']), [{ page_size: VAULT_PAGE_SIZE }]);
  t.same(await raw(vaultDb, ['PRAGMA journal_mode']), [{ journal_mode: 'wal' }], 'the new file is in WAL mode');
  t.same(await raw(vaultDb, ['PRAGMA integrity_check']), [{ integrity_check: 'ok' }]);
  t.same(await raw(vaultDb, ['SELECT id, sealed FROM msg_messages ORDER BY id']), rowsBefore, 'every sealed row is carried over byte for byte');
  t.same(readdirSync(join(dataDir, 'vault')).filter((f) => f.startsWith('.repack-')), [], 'no working file left');
  t.same(scanTree(dataDir, [doomed]), [], 'the message deleted before the repack leaves no trace');

  const st2 = (await runOps(['status', '--data', dataDir, '--json'])).json();
  t.equal(st2.vaultPageSize, VAULT_PAGE_SIZE);
  t.notOk(st2.warnings.some((w: string) => /repack/.test(w)), 'status no longer asks for a repack');
  const again = await runOps(['repack', '--data', dataDir]);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /already has 8192-byte pages and \d+ of \d+ free: nothing to do/);

  const check = await runOps(['check', '--data', dataDir, '--json']);
  t.equal(check.code, 0, check.stdout);

  const app = await reopen(dataDir, { keyFilePath: L.keyFile }, h.app.caPem);
  t.teardown(() => app.close());
  const A2 = await app.as(bob);
  for (const [i, id] of kept.entries()) {
    const got = await A2(`/v1/messages/${id}`);
    t.equal(got.status, 200, `message ${i} reads after the repack`);
    if (i === 0) t.equal(Buffer.from(got.body.body, 'base64').toString(), 'kept 0: the minutes of Tuesday');
  }
  t.equal((await A2(`/v1/messages/${doomed}`)).status, 404);
  const log = app.appliance.auditLog;
  const entries = await log.entries(0, (await log.root()).size);
  t.match(
    entries.filter((e) => e.type === 'vault.repacked'),
    [{ actor: 'system', data: { pageSizeBefore: 4096, pageSizeAfter: VAULT_PAGE_SIZE } }],
    'the repack is on the audit trail, once',
  );
  // The repacked vault takes new messages and deletions as before.
  const A3 = await app.as(alice);
  const m = await h.compose(alice, conv, 'after the repack');
  t.equal((await A3('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } })).status, 201);
  t.equal((await A3(`/v1/messages/${m.id}`, { method: 'DELETE', body: await h.deleteBody(alice, `message:${m.id}`) })).status, 200);
  t.equal((await A3(`/v1/messages/${m.id}`)).status, 404);
});

t.test('when there is no appliance or no vault.db then repack refuses with a named code', async (t) => {
  const L = await live(t);
  await L.stopKeepingData();
  const nowhere = await runOps(['repack', '--data', join(L.dataDir, 'nowhere')]);
  t.equal(nowhere.code, 2);
  t.equal(nowhere.error?.code, 'APPLIANCE_NOT_INITIALISED');
  const vaultDb = join(L.dataDir, 'vault', 'vault.db');
  renameSync(vaultDb, `${vaultDb}.elsewhere`);
  const noVault = await runOps(['repack', '--data', L.dataDir]);
  t.equal(noVault.code, 1);
  t.equal(noVault.error?.code, 'OPS_DATA_MISSING');
  t.notOk(existsSync(vaultDb), 'repack does not create an empty vault.db');
});

t.test('when a quarter of an 8 KiB vault.db is free pages then status asks for a repack, and repack gives them back', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir } = L;
  const A = h.as(alice);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  const kept = [await L.send(alice, conv, 'kept: before the space was freed')];
  await L.stopKeepingData();
  const vaultDb = join(dataDir, 'vault', 'vault.db');
  t.notOk((await runOps(['status', '--data', dataDir, '--json'])).json().warnings.some((w: string) => /repack/.test(w)), 'a young vault: no repack due');

  // What a rebuilding migration or a large destroy leaves: ~80 MiB of free (zeroed) pages.
  await raw(vaultDb, [
    'PRAGMA secure_delete = ON',
    'CREATE TABLE scratch (b BLOB)',
    'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) INSERT INTO scratch SELECT randomblob(8000) FROM n',
    'DROP TABLE scratch',
    'PRAGMA wal_checkpoint(TRUNCATE)',
  ]);
  const [{ freelist_count: free }] = (await raw(vaultDb, ['PRAGMA freelist_count'])) as [{ freelist_count: number }];
  t.ok(free >= 10_000, `${free} free pages`);
  const st = (await runOps(['status', '--data', dataDir, '--json'])).json();
  t.ok(st.warnings.some((w: string) => /% of vault\.db's pages are free.*sigil-server repack/.test(w)), 'status says a repack is due');

  const r = await runOps(['repack', '--data', dataDir, '--json']);
  t.equal(r.code, 0, r.stderr);
  const res = r.json();
  t.match(res, { repacked: true, before: { pageSize: VAULT_PAGE_SIZE, freePages: free }, after: { pageSize: VAULT_PAGE_SIZE, freePages: 0 } });
  t.ok(res.after.bytes < res.before.bytes - 70 * 2 ** 20, `the file shrank: ${res.before.bytes} → ${res.after.bytes} bytes`);
  t.notOk((await runOps(['status', '--data', dataDir, '--json'])).json().warnings.some((w: string) => /repack/.test(w)), 'no repack due any more');
  t.match((await runOps(['repack', '--data', dataDir])).stdout, /nothing to do/);
  t.equal((await runOps(['check', '--data', dataDir, '--json'])).code, 0, 'the vault checks');

  const app = await reopen(dataDir, { keyFilePath: L.keyFile }, h.app.caPem);
  t.teardown(() => app.close());
  const got = await (await app.as(bob))(`/v1/messages/${kept[0]}`);
  t.equal(Buffer.from(got.body.body, 'base64').toString(), 'kept: before the space was freed');
  const entries = await app.appliance.auditLog.entries(0, (await app.appliance.auditLog.root()).size);
  t.match(entries.filter((e) => e.type === 'vault.repacked'), [{ data: { pageSizeBefore: VAULT_PAGE_SIZE, freePagesBefore: free } }]);
});
