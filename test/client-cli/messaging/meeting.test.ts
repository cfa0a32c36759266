/**
 * `sigil meeting` with the built CLI against a real appliance: an organiser schedules a meeting
 * for a group (title from stdin, never argv), members see it in `read` and `meeting list`, answer
 * it (a later answer replaces an earlier one), find it with `sigil search` by title or place, and
 * only the organiser cancels it; `sigil watch --remind` says a meeting due, found at its start or
 * invited to while it watches. What is refused
 * before anything is sent: a start that has passed, a meeting that has ended or was cancelled, a
 * message that is not an invitation, a cancellation by someone else or a second one. A cancellation signed by a member and posted
 * past the CLI is ignored by readers; the server refuses a malformed meeting. A message that fails
 * verification makes the list exit 3; a cancellation that fails it does not stop an answer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Certificate, createRootCrl } from '../../../pki/index.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';
import { appRootCrl } from './helpers/root-crl.js';
import { cliUser } from './helpers/users.js';
import { spawnWatch } from './helpers/watch.js';

/** Resolves once `holds()`, checked every 50 ms; fails with what `what()` says after 20 s. */
async function until(holds: () => boolean, what: () => string): Promise<void> {
  for (const end = Date.now() + 20_000; !holds(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) throw new Error(`not met in 20 s; so far: ${what()}`);
  }
}

/** A meeting's end time in a list line, with its date when it runs past midnight (UTC): a run late in the day schedules ones that do. */
const END = '(?:\\d{4}-\\d\\d-\\d\\d )?\\d\\d:\\d\\d';
const h = await httpHarness(t, { rootCrlCheckEveryMs: 24 * 3_600_000 });
const { app } = h;
const dir = tmpDir(t, 'sigil-cli-meeting-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
const cdoe = await cliUser(app, dir, 'cdoe', 'secret');
const ops = await alee.cli.json(['group', 'create', 'ops', '--label', 'secret']);
await alee.cli.json(['group', 'add', 'ops', 'bkim']);
await alee.cli.json(['group', 'add', 'ops', 'cdoe']);
const opsConversation: string = ops.id; // a group's id is its conversation's (session.ts resolve)

/** Posts a message composed by the harness (signed with the user's key) past the CLI. */
async function post(u: typeof alee, m: { header: string; signature: string; body: string }) {
  return h.as(u.user)('/v1/messages', { method: 'POST', body: { header: m.header, signature: m.signature, body: m.body } });
}

/** A UTC time `hours` from now, minutes only, as people type it. */
const inHours = (hours: number): string => new Date(Math.ceil(Date.now() / 60_000) * 60_000 + hours * 3_600_000).toISOString().slice(0, 16).replace('T', ' ');
const at = inHours(24);
const invited = await alee.cli.json(['meeting', 'schedule', '#ops', '--at', at, '--for', '45m', '--place', 'Room 4.12'], {
  input: 'Budget review\n1. figures\n2. plans\n',
});

t.test('when the organiser schedules a meeting then members read it, signed, with how to answer', async (t) => {
  t.match(invited, { id: /^[A-Za-z0-9_-]{22}$/, label: 'secret', meeting: { kind: 'invite', title: 'Budget review', place: 'Room 4.12', start: `${at.replace(' ', 'T')}:00.000Z` } });
  t.equal(Date.parse(invited.meeting.end) - Date.parse(invited.meeting.start), 45 * 60_000);
  const r = await bkim.cli.run(['read', '#ops']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^\\[SECRET\\] \\S+ \\S+ alee: 1\\. figures\\n {4}2\\. plans\\n {4}meeting "Budget review" ${at}–${END} UTC, Room 4\\.12\\n {4}answer: sigil meeting answer ${invited.id} accept\\|decline\\|tentative$`, 'm'));
  const j = await bkim.cli.json(['read', '#ops']);
  t.match(j.messages.at(-1), { id: invited.id, verified: true, meeting: { kind: 'invite', title: 'Budget review' }, body: '1. figures\n2. plans\n' });
  const verified = await bkim.cli.run(['verify', invited.id]);
  t.equal(verified.code, 0, verified.stderr);
  t.match(verified.stdout, new RegExp(`^meeting: +meeting "Budget review" \\S+ \\S+–${END} UTC, Room 4\\.12$`, 'm'), 'sigil verify says what meeting was signed');
  t.match(await bkim.cli.json(['verify', invited.id]), { verified: true, meeting: { kind: 'invite', title: 'Budget review' }, replyTo: null });
  const found = await bkim.cli.json(['search', 'BUDGET review', '--in', '#ops']);
  t.same(found.matches.map((x: { id: string }) => x.id), [invited.id], 'search finds a meeting by its title');
  t.same((await bkim.cli.json(['search', 'room 4.12'])).matches.map((x: { id: string }) => x.id), [invited.id], 'and by its place');
});

t.test('when members answer then the list shows each one’s latest answer', async (t) => {
  const a1 = await bkim.cli.json(['meeting', 'answer', invited.id, 'accept']);
  t.match(a1, { invitation: invited.id, answer: 'accept', conversation: opsConversation });
  const direct = await alee.cli.json(['meeting', 'schedule', 'bkim', '--at', inHours(30), '--for', '20m'], { input: 'One to one' });
  const waiting = await alee.cli.json(['meeting', 'list']);
  t.match(waiting.meetings, [
    { id: invited.id, answers: [{ login: 'bkim', answer: 'accept' }], noAnswer: ['cdoe'] },
    { id: direct.id, conversationName: 'bkim', answers: [], noAnswer: ['bkim'] },
  ], 'who of the group, or the other person, has not answered');
  await cdoe.cli.json(['meeting', 'answer', invited.id, 'tentative']);
  const human = await bkim.cli.run(['meeting', 'answer', invited.id, 'decline']);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /^answered: +\S{22}\nmeeting: +Budget review\nanswer: +declines\n/);
  const list = await alee.cli.run(['meeting', 'list']);
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, new RegExp(`^${at}–${END} UTC  \\[SECRET\\] #ops  Budget review\\n {4}by alee, Room 4\\.12 · accepted: — · tentative: cdoe · declined: bkim · no answer: —\\n {4}id ${invited.id}\\n\\S+ \\S+–${END} UTC  \\[SECRET\\] bkim  One to one\\n {4}by alee · accepted: — · tentative: — · declined: — · no answer: bkim\\n {4}id ${direct.id}\\n$`));
  const j = await cdoe.cli.json(['meeting', 'list', '--in', '#ops']);
  t.match(j, { meetings: [{ id: invited.id, organiser: 'alee', cancelled: false, answers: [{ login: 'cdoe', answer: 'tentative' }, { login: 'bkim', answer: 'decline' }] }], failed: [] });
  const read = await alee.cli.run(['read', '#ops', '--limit', '1']);
  t.match(read.stdout, /bkim: declines the meeting\n {4}in reply to /, 'an answer reads as one line');
});

t.test('when someone but the organiser cancels then the CLI refuses and readers ignore one posted past it', async (t) => {
  const r = await bkim.cli.run(['meeting', 'cancel', invited.id]);
  t.equal(r.code, 1);
  t.equal(r.stderr, 'error: only the organiser (alee) cancels this meeting; nothing was sent\n');
  const forged = await h.compose(bkim.user, opsConversation, '', { label: 'secret', replyTo: invited.id, meeting: { kind: 'cancel' } });
  const posted = await post(bkim, forged);
  t.equal(posted.status, 201, 'the server checks the form only');
  const list = await cdoe.cli.run(['meeting', 'list']);
  t.equal(list.code, 0, list.stderr);
  t.notMatch(list.stdout, /CANCELLED/);
  t.equal(list.stderr, "1 cancellation not from the meeting's organiser ignored\n");
  const answered = await cdoe.cli.run(['meeting', 'answer', invited.id, 'accept']);
  t.equal(answered.code, 0, 'nor does it stop an answer');
  t.equal(answered.stderr, '');
});

t.test('when the organiser cancels then the meeting is listed as cancelled', async (t) => {
  const c = await alee.cli.json(['meeting', 'cancel', invited.id]);
  t.match(c, { invitation: invited.id, cancelled: true });
  const list = await bkim.cli.run(['meeting', 'list']);
  t.match(list.stdout, /UTC {2}\[SECRET\] #ops {2}CANCELLED Budget review\n/);
  const read = await bkim.cli.run(['read', '#ops', '--limit', '1']);
  t.match(read.stdout, /alee: cancels the meeting\n/);
  const before = (await bkim.cli.json(['read', '#ops', '--limit', '200'])).messages.length;
  const answer = await bkim.cli.run(['meeting', 'answer', invited.id, 'accept']);
  t.equal(answer.code, 1, 'a cancelled meeting is not answered');
  t.match(answer.stderr, /^error: alee cancelled the meeting at \S+Z; nothing was sent\n$/);
  const again = await alee.cli.run(['meeting', 'cancel', invited.id]);
  t.equal(again.code, 1, 'nor cancelled twice');
  t.match(again.stderr, /^error: you cancelled the meeting at \S+Z already; nothing was sent\n$/);
  t.equal((await bkim.cli.json(['read', '#ops', '--limit', '200'])).messages.length, before, 'nothing was sent');
});

t.test('when a meeting has ended then it is listed only with --all and no longer answered', async (t) => {
  const hour = 3_600_000;
  const past = await h.compose(alee.user, opsConversation, '', {
    label: 'secret',
    meeting: { kind: 'invite', title: 'Yesterday', start: new Date(Date.now() - 26 * hour).toISOString(), end: new Date(Date.now() - 25 * hour).toISOString(), place: null },
  });
  t.equal((await post(alee, past)).status, 201);
  const ahead = await bkim.cli.json(['meeting', 'list']);
  t.notOk(ahead.meetings.some((m: { id: string }) => m.id === past.id), 'not ahead');
  const all = await bkim.cli.json(['meeting', 'list', '--all']);
  t.same(all.meetings.map((m: { title: string }) => m.title), ['Yesterday', 'Budget review', 'One to one'], 'soonest first');
  const r = await bkim.cli.run(['meeting', 'answer', past.id, 'accept']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^error: the meeting ended at \S+; nothing was sent\n$/);
});

t.test('when the input is wrong then one line, nothing sent', async (t) => {
  const before = (await bkim.cli.json(['read', '#ops', '--limit', '200'])).messages.length;
  const cases: [string[], string | undefined, number, RegExp][] = [
    [['meeting', 'schedule', '#ops', '--at', inHours(-1), '--for', '1h'], 'Late', 2, /^error: --at: \S+ has passed; a meeting is scheduled ahead\n$/],
    [['meeting', 'schedule', '#ops', '--at', 'tomorrow', '--for', '1h'], 'T', 2, /^error: --at: expected a time/],
    [['meeting', 'schedule', '#ops', '--at', at, '--for', '8d'], 'T', 2, /^error: --for: expected a duration from 1m to 7d/],
    [['meeting', 'schedule', '#ops', '--at', at, '--for', '1h'], '\n\nagenda', 2, /^error: the meeting needs a title/],
    [['meeting', 'schedule', '#ops', '--at', at], 'T', 2, /--for <duration>' not specified/],
    [['meeting', 'schedule', '#ops', '--at', at, '--for', '1h', '--place', ' '], 'T', 2, /^error: --place: 1 to 200 characters\n$/],
    [['meeting', 'schedule', '#ops', '--at', at, '--for', '1h', '--place', 'Room\t4'], 'T', 2, /^error: --place: no control characters, tabs or bidirectional overrides\n$/],
    [['meeting', 'schedule', '#ops', '--at', at, '--for', '1h'], 'Pay \u202eexe.pdf\nagenda', 2, /^error: the title \(the text's first line\) holds a control character, a tab or a bidirectional override\n$/],
    [['meeting', 'answer', invited.id, 'maybe'], undefined, 2, /value 'maybe' is invalid for argument 'answer'/],
    [['meeting', 'answer', 'short', 'accept'], undefined, 2, /^error: <invitation>: expected a 22-character message id\n$/],
  ];
  for (const [args, input, code, stderr] of cases) {
    const r = await bkim.cli.run(args, input === undefined ? {} : { input });
    t.equal(r.code, code, args.join(' '));
    t.match(r.stderr, stderr, args.join(' '));
  }
  const plain = await alee.cli.json(['send', '#ops'], { input: 'not a meeting' });
  const r = await bkim.cli.run(['meeting', 'answer', plain.id, 'accept']);
  t.equal(r.code, 1);
  t.equal(r.stderr, `error: message ${plain.id} is not a meeting invitation\n`);
  const after = (await bkim.cli.json(['read', '#ops', '--limit', '200'])).messages.length;
  t.equal(after, before + 1, 'only the plain message was added');
  const bad = await h.compose(alee.user, opsConversation, '', { label: 'secret', meeting: { kind: 'answer', answer: 'accept' } });
  const refused = await post(alee, bad);
  t.equal(refused.status, 400);
  t.match(refused.body, { error: { code: 'MESSAGE_HEADER_INVALID', message: /meeting: a meeting answer must name its invitation in replyTo/ } });
  // Words readers show on one line, from a client other than this CLI: refused by the appliance.
  const start = new Date(Date.now() + 3_600_000).toISOString();
  const end = new Date(Date.now() + 7_200_000).toISOString();
  const twoLines = await h.compose(alee.user, opsConversation, '', { label: 'secret', meeting: { kind: 'invite', title: 'Plan\n[SECRET] forged line', start, end, place: null } });
  const r1 = await post(alee, twoLines);
  t.equal(r1.status, 400);
  t.match(r1.body, { error: { code: 'MESSAGE_HEADER_INVALID', message: /field meeting\.title: no control characters, line breaks or bidirectional overrides/ } });
  const fileName = await h.compose(alee.user, opsConversation, 'x', { label: 'secret', attachments: [{ id: 'f'.repeat(22), name: 'invoice\u202efdp.exe', sha384: 'A'.repeat(64), size: 1 }] });
  const r2 = await post(alee, fileName);
  t.equal(r2.status, 400);
  t.match(r2.body, { error: { code: 'MESSAGE_HEADER_INVALID', message: /field attachments\.0\.name: no control characters/ } });
});

t.test('when watch is asked to remind then it says a meeting due now, and one invited to while it watches', async (t) => {
  const soon = await alee.cli.json(['meeting', 'schedule', '#ops', '--at', inHours(0.05), '--for', '30m', '--place', 'Room 2'], { input: 'Stand-up' });
  const w = spawnWatch(bkim.cli.profile, ['--remind', '10m', '--json']);
  t.teardown(() => void w.child.kill('SIGKILL'));
  const reminders = () =>
    w.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; id?: string; title?: string; startsInMinutes?: number }).filter((e) => e.event === 'reminder');
  await until(() => reminders().length === 1 && w.stdout().includes('"event":"ready"'), () => w.stdout() + w.stderr());
  t.match(reminders()[0], { id: soon.id, title: 'Stand-up', place: 'Room 2', conversationName: '#ops', organiser: 'alee', label: 'secret' });
  t.ok(reminders()[0]!.startsInMinutes! >= 2 && reminders()[0]!.startsInMinutes! <= 4, `starts in ${reminders()[0]!.startsInMinutes} min`);
  const next = await alee.cli.json(['meeting', 'schedule', '#ops', '--at', inHours(0.1), '--for', '15m'], { input: 'Debrief' });
  await until(() => reminders().length === 2, () => w.stdout() + w.stderr());
  t.match(reminders()[1], { id: next.id, title: 'Debrief' });
  const fresh = await cdoe.cli.json(['meeting', 'schedule', 'bkim', '--at', inHours(0.12), '--for', '10m'], { input: 'Handover' });
  await until(() => reminders().length === 3, () => w.stdout() + w.stderr());
  t.match(reminders()[2], { id: fresh.id, conversationName: 'cdoe' }, 'a conversation begun while watching is named');
  t.notOk(reminders().some((r) => r.title === 'Budget review'), 'a meeting a day away is not due; a cancelled one never');
  w.child.kill('SIGINT');
  t.equal(await w.exit, 0, w.stderr());
  const human = spawnWatch(bkim.cli.profile, ['--remind', '10m']);
  t.teardown(() => void human.child.kill('SIGKILL'));
  await until(() => (human.stdout().match(/\*\* REMINDER/g) ?? []).length === 3, () => human.stdout() + human.stderr());
  t.match(human.stdout(), new RegExp(`^\\*\\* REMINDER \\[SECRET\\] #ops: "Stand-up" \\S+ \\S+ UTC, Room 2 starts in \\d+ min \\(id ${soon.id}\\)$`, 'm'));
  t.match(human.stderr(), /^reminding 10 min before each of \d+ meetings? ahead$/m);
  human.child.kill('SIGINT');
  t.equal(await human.exit, 0, human.stderr());
  const bad = await bkim.cli.run(['watch', '--remind', '8d']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^error: --remind: expected a duration from 1m to 7d/);
});

t.test('when a message looked through fails verification then the list says so loudly and exits 3', async (t) => {
  const rootCrl = appRootCrl(app);
  const { cert, key } = await rootCrl.rootSigner();
  const early = await alee.cli.json(['meeting', 'schedule', 'bkim', '--at', inHours(50), '--for', '1h'], { input: 'Before the revocation' });
  // A CRL carries whole seconds: the revocation is the next whole second after the early
  // invitation's receipt (a time within its second would read as at or before it), and the late
  // messages come after it.
  const revokedAt = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
  await new Promise((r) => setTimeout(r, revokedAt.getTime() - Date.now() + 50));
  const late = await alee.cli.json(['meeting', 'schedule', '#ops', '--at', inHours(48), '--for', '1h'], { input: 'After the revocation' });
  await alee.cli.json(['send', '#ops'], { input: 'not a meeting, failing too' });
  const issuing = Certificate.fromPem(readFileSync(join(app.dataDir, 'ca', 'issuing.pem'), 'utf8'));
  rootCrl.replace(t, (await createRootCrl({ cert, key, crlNumber: 2n, revoked: [{ serialNumber: issuing.serialNumber, revocationDate: revokedAt, reason: 'cACompromise' }] })).pem);
  const r = await bkim.cli.run(['meeting', 'list']);
  t.equal(r.code, 3, r.stderr);
  t.match(r.stdout, new RegExp(`^!! VERIFICATION FAILED: message ${late.id} in #ops from alee: revoked: `, 'm'));
  t.notMatch(r.stdout, /After the revocation/, 'a meeting whose message failed is not listed as a meeting');
  t.match(r.stderr, /^error: 1 of \d+ meeting messages failed verification; do not trust the meetings list$/m, 'a failing message without a meeting is not checked');
  t.notMatch(r.stdout, /VERIFICATION FAILED(?!: message \S+ in #ops from alee: revoked)/);

  // A cancellation signed after the revocation fails verification: an answer is still sent, and says so.
  const cancelled = await alee.cli.run(['meeting', 'cancel', early.id]);
  t.equal(cancelled.code, 0, `the invitation, signed before the revocation, still verifies: ${cancelled.stderr}`);
  const answer = await bkim.cli.run(['meeting', 'answer', early.id, 'accept']);
  t.equal(answer.code, 0, answer.stderr);
  t.equal(answer.stderr, '!! 1 cancellation of this meeting failed verification and was ignored\n');
});
