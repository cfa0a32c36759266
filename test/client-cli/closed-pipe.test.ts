/**
 * Regression: `sigil --help | head` printed an EPIPE stack trace when the reader went away first.
 * A closed pipe is not a failure: both binaries stop quietly with exit 0 and nothing on stderr.
 * Regression: any other failure to write the output (`> /dev/full`, a disk that is full) was an
 * uncaught exception with a stack trace; it is one line and exit 1.
 */
import { spawnSync } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ensureServerBuilt } from '../helpers/server-process.js';
import { REPO_ROOT } from '../helpers/cli.js';

t.before(() => ensureServerBuilt());

for (const bin of [join('dist', 'client-cli', 'main.js'), join('dist', 'server', 'main.js')]) {
  t.test(`when the reader of ${bin} --help closes the pipe at once then it exits 0 without a stack trace`, async (t) => {
    // `true` exits before node has started, so every write meets a closed pipe.
    const r = spawnSync('bash', ['-c', `node ${bin} --help | true; echo "node-exit=\${PIPESTATUS[0]}" >&2`], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    t.match(r.stderr, /node-exit=0/);
    t.notMatch(r.stderr, /EPIPE|Error|at /, 'no error text on stderr');
  });
}

for (const bin of [join('dist', 'client-cli', 'main.js'), join('dist', 'server', 'main.js')]) {
  t.test(`when ${bin} cannot write its output (a full disk) then one line and exit 1, no stack trace`, async (t) => {
    const r = spawnSync('node', [bin, '--help'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', openSync('/dev/full', 'w'), 'pipe'] });
    t.equal(r.status, 1);
    t.equal(r.stderr, 'error: cannot write the output (ENOSPC)\n');
  });
}
