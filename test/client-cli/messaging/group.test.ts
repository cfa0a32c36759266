/**
 * Issue 5 (messaging) with the built CLI, groups: create, add (a member below the label is
 * refused), send urgent, read, list, show, remove, an outsider cannot read; the owner destroys the
 * group with its messages (confirmation required without a terminal).
 */
import t from 'tap';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';
import { cliUser } from './helpers/users.js';

// The appliance with the messaging routes mounted as the shell mounts them.
const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-msg-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
const cdoe = await cliUser(app, dir, 'cdoe', 'confidential');

await t.test('when a group is created and joined then members send and read it', async (t) => {
  const g = await alee.cli.json(['group', 'create', 'ops', '--label', 'secret']);
  t.match(g, { name: 'ops', label: 'secret', members: [{ login: 'alee', role: 'owner' }] });
  const added = await alee.cli.json(['group', 'add', 'ops', 'bkim']);
  t.equal(added.members.length, 2);
  const low = await alee.cli.run(['group', 'add', 'ops', 'cdoe']);
  t.equal(low.code, 1);
  t.match(low.stderr, /CLEARANCE_TOO_LOW/);
  const sent = await alee.cli.json(['send', '#ops', '--urgent'], { input: 'Stand by' });
  t.equal(sent.label, 'secret');
  const r = await bkim.cli.run(['read', '#ops']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^\[SECRET\] URGENT .* alee: Stand by$/m);
  const list = await bkim.cli.json(['group', 'list']);
  t.same(list.groups.map((x: { name: string }) => x.name), ['ops']);
  const shown = await bkim.cli.run(['group', 'show', '#ops']);
  t.match(shown.stdout, /members:\s+alee \(owner\), bkim/);
  const outsider = await cdoe.cli.run(['read', '#ops']);
  t.equal(outsider.code, 1);
  t.match(outsider.stderr, /GROUP_NOT_FOUND/);
  const removed = await alee.cli.json(['group', 'remove', 'ops', 'bkim']);
  t.equal(removed.members.length, 1);
  await alee.cli.json(['group', 'add', 'ops', 'bkim']);
});

await t.test('when the owner destroys the group then it and its messages are gone', async (t) => {
  const noYes = await alee.cli.run(['group', 'destroy', 'ops']);
  t.equal(noYes.code, 2);
  const d = await alee.cli.json(['group', 'destroy', 'ops', '--yes', '--reason', 'operation closed']);
  t.match(d, { deletedBy: 'alee', reason: 'operation closed' });
  t.ok(d.count >= 1);
  const gone = await bkim.cli.run(['read', '#ops']);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /GROUP_NOT_FOUND/);
});

await t.test('when a participant deletes a whole direct conversation then both sides see it empty', async (t) => {
  await alee.cli.json(['send', 'cdoe'], { input: 'short-lived conversation' });
  const before = await cdoe.cli.json(['read', 'alee']);
  t.equal(before.messages.length, 1);
  const d = await cdoe.cli.json(['delete', '--conversation', 'alee', '--reason', 'closing', '--yes']);
  t.match(d, { deletedBy: 'cdoe', reason: 'closing', count: 1 });
  const after = await alee.cli.json(['read', 'cdoe']);
  t.equal(after.messages.length, 0);
});
