/**
 * `sigil-server start` holds the data directory through the run file, so the offline operations
 * refuse to run under it and `status` reports it running (server/main.ts wiring of server/ops).
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { runServer, startServer } from '../../helpers/server-process.js';
import { tmpDir } from '../../helpers/tmp.js';

t.test('when sigil-server start runs then status says running and restore/rotate refuse, and after stop they are free', async (t) => {
  const root = tmpDir(t, 'sigil-runfile-');
  const dataDir = join(root, 'data');
  const init = await runServer(['init', '--data', dataDir, '--listen', '127.0.0.1:0', '--json']);
  t.equal(init.code, 0, init.stderr);
  const server = await startServer(dataDir);
  t.teardown(() => void server.child.kill('SIGKILL'));

  const status = await runServer(['status', '--data', dataDir, '--json']);
  t.equal(status.code, 0, status.stderr);
  t.match(JSON.parse(status.stdout), { server: { running: true, pid: server.child.pid } }, 'status names the serving process');

  const rotate = await runServer(['rotate-master-key', '--data', dataDir, '--new-master-key-file', join(root, 'new.key')]);
  t.not(rotate.code, 0, 'rotation is refused under a live server');
  t.match(rotate.stderr, /OPS_SERVER_RUNNING/);
  t.notOk(existsSync(join(root, 'new.key')), 'no new key was written');

  const second = await runServer(['start', '--data', dataDir], {}, 20_000);
  t.not(second.code, 0, 'a second server on the same directory is refused');
  t.match(second.stderr, /OPS_SERVER_RUNNING/);

  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0, 'the server stops cleanly');
  const after = await runServer(['status', '--data', dataDir, '--json']);
  t.equal(after.code, 0, after.stderr);
  t.match(JSON.parse(after.stdout), { server: { running: false } }, 'the run file is released at stop');
  t.notOk(JSON.parse(after.stdout).server.staleRunFile, 'released, not left stale');
});

t.test('when a master-key rotation was left half done then start refuses with ROTATION_PENDING and the run file is released', async (t) => {
  const root = tmpDir(t, 'sigil-rotpending-');
  const dataDir = join(root, 'data');
  const init = await runServer(['init', '--data', dataDir, '--listen', '127.0.0.1:0', '--json']);
  t.equal(init.code, 0, init.stderr);
  // What an interrupted rotate-master-key leaves: the next key's description beside the current one.
  copyFileSync(join(dataDir, 'vault', 'vault-key.json'), join(dataDir, 'vault', 'vault-key.next.json'));
  const start = await runServer(['start', '--data', dataDir], {}, 30_000);
  t.equal(start.code, 1);
  t.match(start.stderr, /ROTATION_PENDING/);
  const status = await runServer(['status', '--data', dataDir, '--json']);
  t.match(JSON.parse(status.stdout), { server: { running: false } });
  t.notOk(JSON.parse(status.stdout).server.staleRunFile, 'the refused start left no run file');
});
