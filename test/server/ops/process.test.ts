/**
 * Against the real `sigil-server start` in another process (dist build): an online backup and a
 * check run beside it while it serves, and the backup restores after it stopped.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runServer, startServer } from '../../helpers/server-process.js';
import { tmpDir } from '../../helpers/tmp.js';
import { runOps } from './fixture.js';

t.test('when sigil-server serves in another process then backup and check run beside it and the backup restores', async (t) => {
  const root = tmpDir(t, 'sigil-ops-proc-');
  const dataDir = join(root, 'data');
  const init = await runServer(['init', '--data', dataDir, '--listen', '127.0.0.1:0', '--json']);
  t.equal(init.code, 0, init.stderr);
  const server = await startServer(dataDir);
  t.teardown(() => {
    server.child.kill('SIGKILL');
  });
  const out = join(root, 'live.sbk');
  const bk = await runOps(['backup', '--data', dataDir, '--out', out, '--json']);
  t.equal(bk.code, 0, bk.stderr);
  t.equal(bk.json().counts.users, 1, 'the first officer');
  t.ok(bk.json().audit.size > 0);
  // Its log line says the file's size under a name the logger keeps (it once went out as `count`).
  const logged = bk.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'backup written');
  t.match(logged, { path: out, bytes: statSync(out).size }, 'the backup log line carries bytes');
  const chk = await runOps(['check', '--data', dataDir, '--json']);
  t.equal(chk.code, 0, chk.stdout);
  const dry = await runOps(['restore', '--data', dataDir, '--in', out, '--dry-run', '--json']);
  t.equal(dry.code, 0, dry.stderr);
  // The summary for people says what happened and keeps its figures in one column.
  const human = await runOps(['restore', '--data', dataDir, '--in', out, '--dry-run']);
  t.match(human.stdout, /^Verified \(dry run, nothing changed\): backup \S+ of \d{4}-/);
  const columns = human.stdout.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.search(/ \d/));
  t.equal(new Set(columns).size, 1, `figures start in one column: ${columns.join(', ')}`);

  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0, 'the server stops cleanly');
  const r = await runOps(['restore', '--data', dataDir, '--in', out, '--yes']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^Restored: backup \S+ of \d{4}-/);
  const restoredColumns = r.stdout.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.search(/ \d/));
  t.equal(new Set(restoredColumns).size, 1, `figures start in one column: ${restoredColumns.join(', ')}`);
  const again = await startServer(dataDir);
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0, 'the restored appliance starts and stops');
});
