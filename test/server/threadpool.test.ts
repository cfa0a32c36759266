/**
 * libuv's pool size for the server (server/threadpool.ts): the cores + 1, given to the server in
 * its environment. Counted, not trusted: the server's threads in /proc with the deployed size
 * against a server told to use 8 — and without the variable, libuv's 4.
 */
import { availableParallelism } from 'node:os';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { threadPoolSize } from '../../server/threadpool.js';
import { runServer, startServer, type ServerChild } from '../helpers/server-process.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('when sizing the pool then it is the cores + 1', async (t) => {
  t.equal(threadPoolSize(2), 3);
  t.equal(threadPoolSize(8), 9);
  t.equal(threadPoolSize(0), 2, 'never below one thread for SQLite beside one hash');
  t.equal(threadPoolSize(), availableParallelism() + 1);
});

t.test('when sigil-server starts with UV_THREADPOOL_SIZE then its libuv pool has that many threads and the log says so', async (t) => {
  const dataDir = join(tmpDir(t, 'sigil-pool-'), 'data');
  const init = await runServer(['init', '--data', dataDir, '--listen', '127.0.0.1:0', '--json']);
  t.equal(init.code, 0, init.stderr);
  const threadsOf = async (env: Record<string, string>): Promise<{ threads: number; logged: string | undefined }> => {
    const s: ServerChild = await startServer(dataDir, env);
    try {
      // Loading modules and opening the databases ran on the pool: all its threads exist by "listening".
      const logged = /"threadPool":"(\d+)"/.exec(s.stderr())?.[1];
      return { threads: readdirSync(`/proc/${s.child.pid}/task`).length, logged };
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  };
  const own = threadPoolSize();
  const deployed = await threadsOf({ UV_THREADPOOL_SIZE: String(own) });
  const eight = await threadsOf({ UV_THREADPOOL_SIZE: '8' });
  const unset = await threadsOf({});
  t.equal(deployed.logged, String(own), 'the listening line names the pool size');
  t.equal(eight.logged, '8');
  t.equal(unset.logged, '4', "without the variable: libuv's default");
  t.equal(eight.threads - deployed.threads, 8 - own, `${own} pool threads as deployed (8 when told so)`);
  t.equal(unset.threads - deployed.threads, 4 - own, 'and 4 without the variable');
});
