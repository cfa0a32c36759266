/**
 * `sigil meeting schedule`'s times and text alone: `--at` in UTC or with an offset, days and hours
 * that do not exist refused rather than rolled over, `--for` durations from a minute to 7 days,
 * the title as the text's first line; and how a meeting is said (render.ts).
 */
import t from 'tap';
import { parseDuration, parseWhen } from '../../../client-cli/commands/meeting/times.js';
import { titleAndAgenda } from '../../../client-cli/commands/meeting/schedule.js';
import { meetingSummary, meetingTime } from '../../../client-cli/messaging/render.js';
import { meetingsOf } from '../../../client-cli/commands/meeting/list.js';

t.test('when --at is given then it is read as UTC unless it carries an offset', async (t) => {
  t.equal(parseWhen('2026-12-03 10:00').toISOString(), '2026-12-03T10:00:00.000Z');
  t.equal(parseWhen('2026-12-03T10:00:30').toISOString(), '2026-12-03T10:00:30.000Z');
  t.equal(parseWhen('2026-12-03T10:00Z').toISOString(), '2026-12-03T10:00:00.000Z');
  t.equal(parseWhen('2026-12-03T10:00+01:00').toISOString(), '2026-12-03T09:00:00.000Z');
  t.equal(parseWhen('2026-12-03 10:00-05:30').toISOString(), '2026-12-03T15:30:00.000Z');
  for (const bad of ['2026-02-30 10:00', '2026-12-03 24:00', '2026-12-03 10:60', '2026-13-01 10:00', 'tomorrow', '2026-12-03', '10:00', '']) {
    t.throws(() => parseWhen(bad), { name: 'UsageError' }, bad);
  }
});

t.test('when --for is given then minutes, hours and days count up to 7 days', async (t) => {
  const cases: [string, number][] = [['45m', 45], ['45', 45], ['1h', 60], ['1h30m', 90], ['1h30', 90], ['2d', 2880], ['1d2h3m', 1563], ['7d', 10080]];
  for (const [text, minutes] of cases) t.equal(parseDuration(text), minutes, text);
  for (const bad of ['0', '0m', '7d1m', '8d', 'h', 'm', '', '1.5h', '-30m', '30s']) t.throws(() => parseDuration(bad), { name: 'UsageError' }, bad);
});

t.test('when the text is read then its first line is the title and the rest the agenda', async (t) => {
  t.same(titleAndAgenda('  Budget review \r\n1. figures\n2. plans\n'), { title: 'Budget review', agenda: '1. figures\n2. plans\n' });
  t.same(titleAndAgenda('Stand-up'), { title: 'Stand-up', agenda: '' });
  t.throws(() => titleAndAgenda('\nagenda only'), /needs a title/);
  t.throws(() => titleAndAgenda('x'.repeat(201)), /at most 200/);
});

t.test('when a meeting is shown then its time is said in UTC and its words escaped', async (t) => {
  t.equal(meetingTime('2026-12-03T10:00:00.000Z', '2026-12-03T10:45:00.000Z'), '2026-12-03 10:00–10:45 UTC');
  t.equal(meetingTime('2026-12-07T06:00:00.000Z', '2026-12-09T06:00:00.000Z'), '2026-12-07 06:00–2026-12-09 06:00 UTC');
  t.equal(
    meetingSummary({ kind: 'invite', title: 'Review\x1b[2J', start: '2026-12-03T10:00:00.000Z', end: '2026-12-03T11:00:00.000Z', place: 'Room 4' }),
    'meeting "Review\\x1b[2J" 2026-12-03 10:00–11:00 UTC, Room 4',
  );
  t.equal(meetingSummary({ kind: 'answer', answer: 'tentative' }), 'tentatively accepts the meeting');
  t.equal(meetingSummary({ kind: 'cancel' }), 'cancels the meeting');
});

t.test('when meetings are built from verified headers then answers, cancellations and failures follow the rules', async (t) => {
  let seq = 0;
  const msg = (sender: string, meeting: unknown, replyTo: string | null = null, ok = true) => {
    const id = `id${String(++seq).padStart(20, '0')}`;
    const header = { id, sender, label: 'secret', sentAt: `2026-12-01T0${seq}:00:00.000Z`, replyTo, meeting };
    return { m: { id } as never, v: (ok ? { ok: true, header } : { ok: false, reason: 'bad-signature', detail: 'x' }) as never };
  };
  const invite = msg('alee', { kind: 'invite', title: 'T', start: '2026-12-03T10:00:00.000Z', end: '2026-12-03T11:00:00.000Z', place: null });
  const inviteId = (invite.m as { id: string }).id;
  const { meetings, ignored } = meetingsOf({ id: 'c', name: '#ops' }, [
    msg('bkim', { kind: 'answer', answer: 'accept' }, inviteId), // before the invitation: not counted
    invite,
    msg('bkim', { kind: 'answer', answer: 'accept' }, inviteId),
    msg('cdoe', { kind: 'answer', answer: 'tentative' }, inviteId),
    msg('bkim', { kind: 'answer', answer: 'decline' }, inviteId),
    msg('cdoe', { kind: 'cancel' }, inviteId),
    msg('dlin', { kind: 'answer', answer: 'accept' }, inviteId, false),
    msg('bkim', { kind: 'answer', answer: 'accept' }, 'elsewhere0000000000000'),
  ]);
  t.equal(meetings.length, 1);
  t.match(meetings[0], { id: inviteId, organiser: 'alee', cancelled: false, conversationName: '#ops' });
  t.same(meetings[0]?.answers.map((a) => [a.login, a.answer]), [['cdoe', 'tentative'], ['bkim', 'decline']], 'the latest answer of each person, a failed message none');
  t.equal(ignored, 1, "a cancellation not from the organiser is ignored");
  const cancelled = meetingsOf({ id: 'c', name: '#ops' }, [invite, msg('alee', { kind: 'cancel' }, inviteId)]);
  t.equal(cancelled.meetings[0]?.cancelled, true);
});

t.test('when reminders are kept then each meeting is said once, lead before its start, and cancellations count only from the organiser', async (t) => {
  const { Reminders } = await import('../../../client-cli/messaging/reminders.js');
  let now = Date.parse('2026-12-03T09:00:00.000Z');
  const said: [string, number][] = [];
  const r = new Reminders(10 * 60_000, () => new Date(now), (d) => said.push([d.meeting.title, d.startsInMinutes]));
  const at = (min: number) => new Date(Date.parse('2026-12-03T09:00:00.000Z') + min * 60_000).toISOString();
  const meeting = (id: string, start: number, o: { cancelled?: boolean; end?: number } = {}) => ({
    id, conversation: 'c', conversationName: '#ops', label: 'secret', organiser: 'alee', title: id,
    start: at(start), end: at(o.end ?? start + 60), place: null, cancelled: o.cancelled ?? false, answers: [],
  });
  r.add(meeting('later', 30));
  r.add(meeting('soon', 5));
  r.add(meeting('cancelled', 8, { cancelled: true }));
  r.add(meeting('over', -120, { end: -60 }));
  r.add(meeting('begun', -5));
  r.add(meeting('dropped', 25));
  t.equal(r.size, 4, 'a cancelled or ended meeting is not kept');
  r.tick();
  t.same(said, [['soon', 5]], 'due at once: within the lead; a begun meeting is not announced');
  r.cancel('dropped', 'bkim');
  r.cancel('later', 'bkim');
  r.cancel('dropped', 'alee');
  now += 20 * 60_000 + 1;
  r.tick();
  r.tick();
  t.same(said, [['soon', 5], ['later', 10]], 'said once; a cancellation by the organiser silences, by another not');
  now += 60_000;
  r.tick();
  t.equal(said.length, 2);
  now += 11 * 60_000;
  r.tick();
  t.equal(r.size, 0, 'begun meetings are forgotten');
});
