/**
 * `sigil watch` as a real child process against a real appliance: it prints each new message
 * verified; when the server drops every connection it reconnects with Last-Event-ID and the
 * message sent while it was away arrives — nothing lost, nothing twice; `--count` ends it; SIGINT
 * ends it cleanly with exit 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import t from 'tap';
import { CLI_MAIN, ensureCliBuilt } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { cliUser } from './helpers/users.js';

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
  const child = spawn(process.execPath, [CLI_MAIN, '--profile', bkim.cli.profile, 'watch', '--json', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const lines = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
  const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
  void exit.then(() => clearTimeout(killer));
  return {
    child,
    lines,
    stderr: () => err,
    exit,
    async waitFor(pred, ms = 30_000) {
      const end = Date.now() + ms;
      while (!pred(lines())) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`watch did not get there; stdout=${out} stderr=${err}`);
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
  const child = spawn(process.execPath, [CLI_MAIN, '--profile', bkim.cli.profile, 'watch', '--count', '1'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const end = Date.now() + 30_000;
  while (!/watching/.test(err) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  await alee.cli.json(['send', 'bkim', '--urgent'], { input: 'four' });
  t.equal(await exit, 0, err);
  t.match(out, /^\[SECRET\] URGENT \d{4}-\d\d-\d\d \d\d:\d\d alee: four$/m);
});
