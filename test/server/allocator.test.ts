/**
 * The malloc the server runs on (server/allocator.ts): read from the process's mappings, so a
 * preload the loader could not open is not reported as jemalloc. Real server processes: the
 * listening line names the allocator, with jemalloc preloaded (where the host has libjemalloc2, as
 * `make test` installs it as root) and without.
 */
import { join } from 'node:path';
import t from 'tap';
import { mallocInUse } from '../../server/allocator.js';
import { jemallocLibrary } from '../../bench/lib/load.js';
import { runServer, startServer } from '../helpers/server-process.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('when reading the mappings then jemalloc is named only when its library is mapped', async (t) => {
  t.equal(mallocInUse(() => '7f26aec09000-7f26aecaf000 r-xp 00009000 fe:00 5595141  /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n'), 'jemalloc');
  t.equal(mallocInUse(() => '7f26aec09000-7f26aecaf000 r-xp 00009000 fe:00 1  /usr/lib/x86_64-linux-gnu/libc.so.6\n'), 'glibc');
  t.equal(mallocInUse(() => '7f26aec09000-7f26aecaf000 r-xp 00009000 fe:00 1  /home/libjemalloc.so.2.d/libc.so.6\n'), 'glibc', 'a directory of that name is not the library');
  t.equal(
    mallocInUse(() => {
      throw new Error('ENOENT');
    }),
    'unknown',
  );
  t.match(mallocInUse(), /^(jemalloc|glibc)$/, 'this process, on Linux');
});

t.test('when sigil-server starts then its listening line names the malloc it runs on', async (t) => {
  const dataDir = join(tmpDir(t, 'sigil-malloc-'), 'data');
  const init = await runServer(['init', '--data', dataDir, '--listen', '127.0.0.1:0', '--json']);
  t.equal(init.code, 0, init.stderr);
  const loggedWith = async (env: Record<string, string>): Promise<string | undefined> => {
    const s = await startServer(dataDir, env);
    try {
      return /"malloc":"(\w+)"/.exec(s.stderr())?.[1];
    } finally {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  };
  t.equal(await loggedWith({}), 'glibc');
  t.equal(await loggedWith({ LD_PRELOAD: join(dataDir, 'no-such-libjemalloc.so.2') }), 'glibc', 'a preload the loader ignored is not jemalloc');
  const jemalloc = jemallocLibrary();
  await t.test('and with jemalloc preloaded', { skip: jemalloc ? false : 'libjemalloc2 is not installed here (make test installs it as root)' }, async (t) => {
    t.equal(await loggedWith({ LD_PRELOAD: jemalloc! }), 'jemalloc');
  });
});
