/**
 * A live event stream ends when its session expires, not at the next keep-alive re-check: a
 * session that simply ran out (absolute lifetime, idle timeout; no logout, no revocation) used to
 * keep its stream open, receiving live messages, for up to one keep-alive interval (15 s by
 * default) after the store stopped accepting it. The keep-alive here is 60 s, so only the expiry
 * can end a stream within the tests' bounds.
 *
 * A real appliance over real TLS. The absolute-lifetime test fakes only the appliance's clock, as
 * an offset from real time that it moves once, forward, before opening the streams it measures
 * (the route waits with real timers for what the store answered by its clock, so a jump after a
 * stream opened would be seen at the store's next answer, not at once); from then on the clock runs
 * at real speed and an expiry instant maps to a real one. The idle test runs on real time.
 */
import t from 'tap';
import { httpHarness, openEvents, type HttpHarness, type SseClient, type SseEvent } from '../messaging/http-harness.js';
import type { TestUser } from '../../helpers/appliance.js';

/** Within this much of its session's expiry a stream must have ended. */
const BOUND_MS = 2000;

const messageIds = (evs: SseEvent[]): string[] =>
  evs.filter((e) => e.event === 'message').map((e) => (JSON.parse(e.data) as { id: string }).id);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const ready = (es: SseClient): Promise<void> => es.until((evs) => evs.some((e) => e.event === 'ready'));
/** Date.now() when `es` ended, or Infinity if it had not by `deadline` (Date.now() terms). */
const endedBy = (es: SseClient, deadline: number): Promise<number> =>
  es.until(() => es.ended, Math.max(1, deadline - Date.now())).then(
    () => Date.now(),
    () => Infinity,
  );

/** Sends `text` from `u` (with `token`) to `conversation`; returns the message id. */
async function send(h: HttpHarness, u: TestUser, token: string, conversation: string, text: string): Promise<string> {
  const m = await h.compose(u, conversation, text);
  const r = await h.as({ ...u, token })('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return m.id;
}

t.test('when a session reaches its absolute end then its open stream ends at once, and only its own', async (t) => {
  let offsetMs = 0;
  const now = (): Date => new Date(Date.now() + offsetMs);
  // A 60 s lifetime: setup fits in it, and a jump of under a minute leaves every idle timer (30 min) alone.
  const h = await httpHarness(t, { now, keepAliveMs: 60_000, config: { sessionAbsoluteMs: 60_000 } });
  const app = h.app;
  const alice = await app.createStaff({ login: 'ex-alice', clearance: 'secret' });
  const bob = await app.createStaff({ login: 'ex-bob', clearance: 'secret' });
  const dave = await app.createStaff({ login: 'ex-dave', clearance: 'secret' });
  const carol = await app.createStaff({ login: 'ex-carol', clearance: 'secret' });
  const A = h.as(alice);
  const g = (await A('/v1/groups', { body: { name: 'ex-group', label: 'restricted' } })).body as { id: string };
  for (const m of [bob, dave, carol]) t.equal((await A('/v1/groups/ex-group/members', { body: { login: m.login } })).status, 200);

  // bob's session, then dave's 1.5 s later; then the clock jumps to 15 s before bob's absolute end:
  // time for two logins, three streams and a delivery on a machine busy with other test files (3 s
  // was once not enough under load, and 8 s twice not under a heavy parallel run).
  const expiryOf = async (u: TestUser, token: string): Promise<number> =>
    (await app.appliance.sessions.resolve(token, u.cert.fingerprint)).expiresAt.getTime();
  const bobToken = await app.loginAs(bob.login, bob.password, bob.cert, bob.key);
  const bobEnd = await expiryOf(bob, bobToken);
  await sleep(3000);
  const daveToken = await app.loginAs(dave.login, dave.password, dave.cert, dave.key);
  const daveEnd = await expiryOf(dave, daveToken);
  offsetMs = bobEnd - 15_000 - Date.now();
  // Sessions opened after the jump, 60 s each: valid throughout.
  const aliceToken = await app.loginAs(alice.login, alice.password, alice.cert, alice.key);
  const carolToken = await app.loginAs(carol.login, carol.password, carol.cert, carol.key);
  // The expiry instants in real time (the clock's offset no longer changes).
  const bobEndReal = bobEnd - offsetMs;
  const daveEndReal = daveEnd - offsetMs;

  // dave's stream first: bob's, opened next, expires earlier and must re-arm the route's one timer.
  const daveEs = await openEvents(h, { ...dave, token: daveToken });
  const bobEs = await openEvents(h, { ...bob, token: bobToken });
  const carolEs = await openEvents(h, { ...carol, token: carolToken });
  t.teardown(() => [daveEs, bobEs, carolEs].forEach((es) => es.close()));
  for (const es of [daveEs, bobEs, carolEs]) await ready(es);
  const bobEnded = endedBy(bobEs, bobEndReal + BOUND_MS);

  const before = await send(h, alice, aliceToken, g.id, 'before any expiry');
  for (const es of [daveEs, bobEs, carolEs]) await es.until((evs) => messageIds(evs).includes(before));
  t.ok(Date.now() < bobEndReal, 'control: bob’s stream was open and receiving before his session’s end');

  // The message checks' worker threads exit after 10 s idle, and one started under the tests'
  // TypeScript loader takes over a second (~80 ms built): a message just before bob's end keeps
  // them warm, so the one after it reaches dave within his last 2.7 s.
  await sleep(bobEndReal - 1500 - Date.now());
  await send(h, alice, aliceToken, g.id, 'keeping the checks warm');
  // Past bob's end, before dave's: a message published now reaches dave and carol, not bob.
  await sleep(bobEndReal + 300 - Date.now());
  const afterBob = await send(h, alice, aliceToken, g.id, 'after bob’s expiry');
  await daveEs.until((evs) => messageIds(evs).includes(afterBob));
  await carolEs.until((evs) => messageIds(evs).includes(afterBob));
  const bobEndedAt = await bobEnded;
  t.ok(bobEndedAt - bobEndReal < BOUND_MS, `bob’s stream ended ${bobEndedAt - bobEndReal} ms after his session’s end (60 s keep-alive)`);
  t.notOk(messageIds(bobEs.events).includes(afterBob), 'the message published after bob’s expiry was not delivered to him');
  t.notOk(daveEs.ended, 'dave’s stream, whose session is still valid, stays open');
  t.notOk(carolEs.ended, 'carol’s stream stays open');
  await t.rejects(app.appliance.sessions.resolve(bobToken, bob.cert.fingerprint), { code: 'SESSION_EXPIRED' }, 'bob’s session expired');

  // The route's timer, re-armed for the next expiry among the open streams: dave's.
  const daveEndedAt = await endedBy(daveEs, daveEndReal + BOUND_MS);
  t.ok(daveEndedAt - daveEndReal < BOUND_MS, `dave’s stream ended ${daveEndedAt - daveEndReal} ms after his session’s end`);
  t.ok(daveEndedAt >= daveEndReal - 50, 'not before it');
  const afterDave = await send(h, alice, aliceToken, g.id, 'after dave’s expiry');
  await carolEs.until((evs) => messageIds(evs).includes(afterDave));
  t.notOk(carolEs.ended, 'carol’s stream still open and receiving after both expiries');
  t.notOk(messageIds(daveEs.events).includes(afterDave), 'dave got nothing after his expiry');
});

t.test('when a session is kept alive by other requests then its stream outlives the old idle deadline, and ends at the new one', async (t) => {
  // Idle 20 s (a session is touched when last used over 2 s ago); real time. The margins below
  // are seconds, not hundreds of milliseconds: with 6 s, a CI machine busy with other test files
  // once took so long between the touch and the send that the session idled out first (12 s held
  // on CI, but not always under a heavier parallel run).
  const IDLE = 20_000;
  const h = await httpHarness(t, { keepAliveMs: 60_000, sessionIdleMs: IDLE });
  const app = h.app;
  const alice = await app.createStaff({ login: 'ei-alice', clearance: 'secret' });
  const bob = await app.createStaff({ login: 'ei-bob', clearance: 'secret' });
  const conv = (await h.as(alice)('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };
  // alice logs in first: a slow Argon2 hash must not eat the time between bob's touch and the send.
  const aliceToken = await app.loginAs(alice.login, alice.password, alice.cert, alice.key);

  const bobToken = await app.loginAs(bob.login, bob.password, bob.cert, bob.key);
  const es = await openEvents(h, { ...bob, token: bobToken });
  t.teardown(() => es.close());
  await ready(es);
  // The session was last used no later than now: its idle deadline, as the stream learned it, is before this.
  const oldDeadline = Date.now() + IDLE;

  // A third into the idle period: past the touch interval, and early enough that a re-check at the
  // old deadline that itself touched the session (extending it to old deadline + IDLE) would end
  // the stream far past the bound below.
  await sleep(IDLE / 3);
  const touchedFrom = Date.now();
  t.equal((await h.as({ ...bob, token: bobToken })('/v1/me')).status, 200, 'another request of bob’s session moves its idle deadline');
  const touchedBy = Date.now();
  // alice's session, idle since her login, is kept alive the same way for the send below.
  t.equal((await h.as({ ...alice, token: aliceToken })('/v1/me')).status, 200, 'alice’s session is kept alive too');

  await sleep(oldDeadline + 300 - Date.now());
  t.notOk(es.ended, 'the stream is not cut at the old idle deadline');
  const m = await send(h, alice, aliceToken, conv.id, 'past the old deadline');
  await es.until((evs) => messageIds(evs).includes(m));
  t.ok(Date.now() < touchedFrom + IDLE, 'control: delivered while the extended session was valid');

  // No use since: the session idles out at the new deadline, and the stream ends with it.
  const endedAt = await endedBy(es, touchedBy + IDLE + BOUND_MS);
  t.ok(endedAt - (touchedBy + IDLE) < BOUND_MS, `ended ${endedAt - (touchedBy + IDLE)} ms after the new idle deadline (60 s keep-alive)`);
  t.ok(endedAt >= touchedFrom + IDLE - 50, 'not before it');
  await t.rejects(app.appliance.sessions.resolve(bobToken, bob.cert.fingerprint), { code: 'SESSION_EXPIRED' }, 'the session idled out');
});

t.test('when nothing but its own open stream uses a session then the session idles out and the stream ends at its idle deadline', async (t) => {
  // Idle 4 s; a keep-alive re-check every 500 ms. Each of those re-checks used to count as use of
  // the session (touching it whenever it was last used over 400 ms before), so a stream alone kept
  // its session alive for as long as it stayed open. Real time.
  const IDLE = 4000;
  const h = await httpHarness(t, { keepAliveMs: 500, sessionIdleMs: IDLE });
  const app = h.app;
  const bob = await app.createStaff({ login: 'eu-bob', clearance: 'secret' });

  const loginFrom = Date.now();
  const bobToken = await app.loginAs(bob.login, bob.password, bob.cert, bob.key);
  const es = await openEvents(h, { ...bob, token: bobToken });
  t.teardown(() => es.close());
  await ready(es);
  // The login and the stream's request are the session's last uses: its idle deadline is before this.
  const deadlineBy = Date.now() + IDLE;

  const endedAt = await endedBy(es, deadlineBy + BOUND_MS);
  t.ok(endedAt - deadlineBy < BOUND_MS, `ended ${endedAt - deadlineBy} ms after the idle deadline`);
  t.ok(endedAt >= loginFrom + IDLE - 50, 'not before it');
  t.ok(es.keepAlives >= 4, `control: the server re-checked and wrote ${es.keepAlives} keep-alives meanwhile`);
  await t.rejects(app.appliance.sessions.resolve(bobToken, bob.cert.fingerprint, { touch: false }), { code: 'SESSION_EXPIRED' }, 'the session idled out');
});
