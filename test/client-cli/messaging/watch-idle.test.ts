/**
 * `sigil watch` left running on an unattended workstation: its open stream is no use of the
 * session, so the session idles out, the stream ends, the reconnect is refused, and watch says so
 * in one line and exits 4 (authentication refused). Before, the server's keep-alive re-checks
 * touched the session and a running watch kept it alive for as long as it ran. A real appliance
 * (idle timeout 4 s, keep-alive 500 ms) and the CLI as a child process; real time.
 */
import t from 'tap';
import { ensureCliBuilt } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { cliUser } from './helpers/users.js';
import { spawnWatch } from './helpers/watch.js';

const IDLE = 4000;
const h = await httpHarness(t, { keepAliveMs: 500, sessionIdleMs: IDLE });
const dir = tmpDir(t, 'sigil-cli-watch-idle-');
ensureCliBuilt();

t.test('when watch runs alone then the session idles out and watch exits 4 with one line', async (t) => {
  const loginFrom = Date.now();
  const bkim = await cliUser(h.app, dir, 'bkim', 'secret');
  const w = spawnWatch(bkim.cli.profile, ['--json'], IDLE + 20_000);
  const code = await w.exit;
  const out = w.stdout();
  const err = w.stderr();
  const ranMs = Date.now() - loginFrom;

  t.ok(out.split('\n').some((l) => l.includes('"ready"')), 'control: the stream was open and replayed');
  t.equal(code, 4, `exit code (stderr: ${err})`);
  t.ok(ranMs >= IDLE - 50, `not before the idle deadline (${ranMs} ms after the login)`);
  const lines = err.split('\n').filter(Boolean);
  t.equal(lines.filter((l) => /SESSION_EXPIRED|session expired/i.test(l)).length, 1, `one line names the expiry: ${err}`);
  t.notMatch(err, /\n\s+at /, 'no stack trace');
});
