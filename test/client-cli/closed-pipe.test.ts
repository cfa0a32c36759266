/**
 * Regression: `sigil --help | head` printed an EPIPE stack trace when the reader went away first.
 * A closed pipe is not a failure: both binaries stop quietly with exit 0 and nothing on stderr.
 */
import { spawnSync } from 'node:child_process';
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
