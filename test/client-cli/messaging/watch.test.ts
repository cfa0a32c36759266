/**
 * `sigil watch` as a real child process against a real appliance: it prints each new message
 * verified; when the server drops every connection it reconnects with Last-Event-ID and the
 * message sent while it was away arrives — nothing lost, nothing twice; `--count` ends it; SIGINT
 * ends it cleanly with exit 0.
 */
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { ensureCliBuilt } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { cliUser } from './helpers/users.js';
import { spawnWatch } from './helpers/watch.js';

const h = await httpHarness(t, { keepAliveMs: 1000 });
const dir = tmpDir(t, 'sigil-cli-watch-');
const alee = await cliUser(h.app, dir, 'alee', 'secret');
const bkim = await cliUser(h.app, dir, 'bkim', 'secret');
ensureCliBuilt();

interface Watcher {
  child: ChildProcess;
  lines: () => Record<string, any>[];
  stderr: () => string;
  waitFor(pred: (lines: Record<string, any>[]) => boolean, ms?: number): Promise<void>;
  exit: Promise<number | null>;
}

function watch(args: string[]): Watcher {
  const w = spawnWatch(bkim.cli.profile, ['--json', ...args]);
  const lines = () => w.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
  return {
    child: w.child,
    lines,
    stderr: w.stderr,
    exit: w.exit,
    async waitFor(pred, ms = 30_000) {
      const end = Date.now() + ms;
      while (!pred(lines())) {
        if (Date.now() > end || w.child.exitCode !== null) throw new Error(`watch did not get there; stdout=${w.stdout()} stderr=${w.stderr()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

const messages = (ls: Record<string, any>[]) => ls.filter((l) => l.event === 'message');

t.test('when the server drops the connection then watch resumes and nothing is lost or twice', async (t) => {
  const w = watch(['--count', '3']);
  await w.waitFor((ls) => ls.some((l) => l.event === 'ready'));
  const first = await alee.cli.json(['send', 'bkim'], { input: 'one' });
  await w.waitFor((ls) => messages(ls).length === 1);
  // Drop every connection of the appliance (the watcher's stream among them), and send at once.
  (h.app.listener.server as unknown as { closeAllConnections(): void }).closeAllConnections();
  const composed = await h.compose(alee.user, first.conversation, 'two');
  const posted = await h.as(alee.user)('/v1/messages', { body: { header: composed.header, signature: composed.signature, body: composed.body } });
  t.equal(posted.status, 201, JSON.stringify(posted.body));
  await w.waitFor((ls) => ls.filter((l) => l.event === 'ready').length >= 2);
  const third = await alee.cli.json(['send', 'bkim'], { input: 'three' });
  t.equal(await w.exit, 0, w.stderr());
  const got = messages(w.lines());
  t.same(got.map((m) => m.id), [first.id, composed.id, third.id], 'each message once, in order');
  t.same(got.map((m) => m.body), ['one', 'two', 'three']);
  t.ok(got.every((m) => m.verified === true && m.signer === 'alee'));
});

t.test('when watch gets SIGINT then it exits cleanly with 0', async (t) => {
  const w = watch([]);
  await w.waitFor((ls) => ls.some((l) => l.event === 'ready'));
  w.child.kill('SIGINT');
  t.equal(await w.exit, 0, w.stderr());
  t.equal(w.stderr(), '');
});

t.test('when watch shows a message in human form then it has the banner line', async (t) => {
  const w = spawnWatch(bkim.cli.profile, ['--count', '1']);
  const end = Date.now() + 30_000;
  while (!/watching/.test(w.stderr()) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  await alee.cli.json(['send', 'bkim', '--urgent'], { input: 'four' });
  t.equal(await w.exit, 0, w.stderr());
  const out = w.stdout();
  t.match(out, /^\[SECRET\] URGENT \d{4}-\d\d-\d\d \d\d:\d\d alee: four$/m);
});
