/**
 * `sigil mute` / `sigil unmute` with the built CLI against a real appliance: a muted group's
 * ordinary messages are not pushed to the member's `sigil watch`, its urgent ones are; muted
 * messages still count as unread and `sigil inbox` marks the conversation; unmuting pushes
 * everything again; muting is the caller's alone; a conversation that is not yours is refused.
 */
import t from 'tap';
import { ensureCliBuilt } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { cliUser } from './helpers/users.js';
import { spawnWatch } from './helpers/watch.js';

const h = await httpHarness(t, { keepAliveMs: 1000 });
const dir = tmpDir(t, 'sigil-cli-mute-');
const alee = await cliUser(h.app, dir, 'alee', 'secret');
const bkim = await cliUser(h.app, dir, 'bkim', 'secret');
const cdoe = await cliUser(h.app, dir, 'cdoe', 'secret');
ensureCliBuilt();

await alee.cli.json(['group', 'create', 'ops', '--label', 'secret']);
await alee.cli.json(['group', 'add', 'ops', 'bkim']);

/** The messages a `sigil watch --json --count n` of bkim printed, once it has printed n. */
async function watchUntil(n: number, send: () => Promise<void>): Promise<Record<string, any>[]> {
  const w = spawnWatch(bkim.cli.profile, ['--json', '--count', String(n)], 40_000);
  const lines = () => w.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
  for (const end = Date.now() + 30_000; !lines().some((l) => l.event === 'ready'); ) {
    if (Date.now() > end || w.child.exitCode !== null) throw new Error(`watch did not start: ${w.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await send();
  const code = await w.exit;
  if (code !== 0) throw new Error(`watch exited ${code}: ${w.stderr()}`);
  return lines().filter((l) => l.event === 'message');
}

t.test('when a member mutes a group then watch shows only its urgent messages, and unmute shows all again', async (t) => {
  const muted = await bkim.cli.run(['mute', '#ops']);
  t.equal(muted.code, 0, muted.stderr);
  t.match(muted.stdout, /^conversation:\s+#ops$/m);
  t.match(muted.stdout, /^muted:\s+yes: only urgent messages are pushed live$/m);

  const shown = await watchUntil(1, async () => {
    await alee.cli.json(['send', '#ops'], { input: 'routine' });
    await alee.cli.json(['send', '#ops', '--urgent'], { input: 'urgent one' });
  });
  t.same(
    shown.map((m) => m.body),
    ['urgent one'],
    'the routine message sent first was not pushed',
  );

  const inbox = await bkim.cli.run(['inbox']);
  t.match(inbox.stdout, /^\[SECRET\] #ops {2}2 unread \(muted\)$/m, 'muted messages still arrive and count as unread');
  t.match(inbox.stdout, /alee: routine$/m);

  t.match(await bkim.cli.json(['unmute', '#ops']), { id: String, kind: 'group', name: '#ops', muted: false });
  const again = await watchUntil(1, async () => {
    await alee.cli.json(['send', '#ops'], { input: 'routine again' });
  });
  t.same(
    again.map((m) => m.body),
    ['routine again'],
  );
});

t.test('when one member mutes then the others are not muted', async (t) => {
  await bkim.cli.json(['mute', '#ops']);
  const list = await alee.cli.json(['inbox']);
  t.match(list.conversations, [{ name: '#ops', muted: false }]);
  t.match((await bkim.cli.json(['inbox'])).conversations, [{ name: '#ops', muted: true }]);
  await bkim.cli.json(['unmute', '#ops']);
});

t.test('when a conversation is not the caller’s then mute is refused with one line', async (t) => {
  const r = await cdoe.cli.run(['mute', '#ops']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^error: .*GROUP_NOT_FOUND.*\n$/);
  const usage = await cdoe.cli.run(['mute']);
  t.equal(usage.code, 2);
});
