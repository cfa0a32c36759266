/**
 * `POST /v1/messages/stream` over the real appliance (TLS client certificates, sessions, the routes
 * as mounted): each line is answered on its own, in order, as soon as its message is stored or
 * refused; the stored ones keep the order given; the stream stops reading (and says why in its end
 * line) when its session ends, its time is up, a line is over the limit or the server stops — and
 * nothing it did not answer is stored.
 */
import t from 'tap';
import { httpHarness, openSendStream, type HttpHarness } from '../messaging/http-harness.js';
import type { TestUser } from '../../helpers/appliance.js';

type Msg = { id: string; header: string; signature: string; body: string };
const line = (m: Msg): string => `${JSON.stringify({ header: m.header, signature: m.signature, body: m.body })}\n`;

async function directConversation(h: HttpHarness, a: TestUser, b: TestUser): Promise<string> {
  return ((await h.as(a)('/v1/conversations/direct', { body: { peer: b.login } })).body as { id: string }).id;
}

/** A new staff account `login` and its direct conversation with `peer` (a new account too, given its login). */
async function senderTo(h: HttpHarness, login: string, peer: TestUser | string): Promise<{ u: TestUser; peer: TestUser; conv: string }> {
  const u = await h.app.createStaff({ login, clearance: 'secret' });
  const to = typeof peer === 'string' ? await h.app.createStaff({ login: peer, clearance: 'secret' }) : peer;
  return { u, peer: to, conv: await directConversation(h, u, to) };
}

async function historyIds(h: HttpHarness, u: TestUser, conv: string): Promise<string[]> {
  const page = (await h.as(u)(`/v1/conversations/${conv}/messages?limit=500`)).body.messages as { id: string }[];
  return page.map((m) => m.id).reverse();
}

t.test('messages in a stream', async (t) => {
  const h = await httpHarness(t, { captureLogs: true, stream: { maxInFlight: 4 } });
  const { u: alice, peer: bob, conv } = await senderTo(h, 's-alice', 's-bob');
  const carol = await h.app.createStaff({ login: 's-carol', clearance: 'secret' });
  const other = await directConversation(h, bob, carol);

  await t.test('when lines mix good and bad messages then each gets its own answer, in order, and the good ones are stored in order', async (t) => {
    const good = await Promise.all(['one', 'two', 'three', 'four'].map((b) => h.compose(alice, conv, b)));
    const forged = await h.compose(alice, conv, 'forged');
    const stranger = await h.compose(alice, other, 'not my conversation');
    const s = await openSendStream(h, alice);
    t.equal(s.status, 200, 'the head comes before any line');
    // Lines cut across writes, a CRLF, blank lines: the framing is by newline only.
    const first = line(good[0]!);
    s.write(first.slice(0, 100));
    s.write(first.slice(100));
    s.write(`${line({ ...forged, signature: good[1]!.signature }).trimEnd()}\r\n`);
    s.write('\n\r\n');
    s.write('{not json\n');
    s.write(`${JSON.stringify({ header: 'x', signature: 'y', body: 42 })}\n`);
    s.write(line(good[1]!));
    s.write(line(good[0]!)); // the same message again
    s.write(line(stranger));
    s.write(line(good[2]!) + line(good[3]!).trimEnd()); // the last line without its newline
    s.end();
    t.ok(await s.closed, 'the response ends cleanly');

    const answers = s.answers;
    const end = answers.pop()!;
    t.same(end, { end: { lines: 9, accepted: 4, refused: 5 } }, 'the end line counts the lines; no error: the client ended it');
    t.same(answers.map((a) => a.n), [0, 1, 2, 3, 4, 5, 6, 7, 8], 'one answer per line, in order, blank lines not counted');
    const codes = answers.map((a) => (a.receipt ? 'ok' : a.error.code));
    t.same(codes.slice(0, 6), ['ok', 'MESSAGE_BAD_SIGNATURE', 'BAD_REQUEST', 'BAD_REQUEST', 'ok', 'MESSAGE_REPLAY']);
    t.equal(answers[6]!.error.status, 404, JSON.stringify(answers[6]));
    t.same(codes.slice(7), ['ok', 'ok']);
    t.same(answers[1]!.error.status, 422);
    t.match(answers[3]!.error.message, /^body: /, 'the wrong shape names the field');
    const receipts = [0, 4, 7, 8].map((i) => answers[i]!.receipt as { id: string; seq: number; audit?: { index: number } });
    t.same(receipts.map((r) => r.id), good.map((m) => m.id));
    t.same([...receipts.map((r) => r.seq)].sort((a, b) => a - b), receipts.map((r) => r.seq), 'sequence numbers ascend in the order given');
    for (const r of receipts) t.type(r.audit?.index, 'number', 'each accepted message has its audit entry');

    t.same(await historyIds(h, bob, conv), good.map((m) => m.id), 'bob reads exactly the accepted ones, in order');
    t.equal((await h.as(alice)(`/v1/messages/${forged.id}`)).status, 404);
    const one = await h.as(bob)(`/v1/messages/${good[2]!.id}`);
    t.equal(Buffer.from(one.body.body as string, 'base64').toString(), 'three', 'stored and opened like any message');

    const log = h.app.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.path === '/v1/messages/stream' && l.count === 9);
    t.ok(log, 'the stream has its access-log line');
    t.equal(log?.accepted, 4);
    t.equal(log?.refused, 5);
    t.notOk(log?.reason, 'no reason: the client ended it');
    const raw = h.app.logs.find((l) => l.includes('"path":"/v1/messages/stream"') && l.includes('"count":9')) ?? '';
    t.notOk(raw.includes(good[0]!.id) || raw.includes('signature'), 'no message id, header or signature in it');
  });

  await t.test('when many more lines than the window arrive at once then all are answered, in order, and stored in order', async (t) => {
    const msgs = await Promise.all(Array.from({ length: 120 }, (_, i) => h.compose(alice, conv, `bulk ${i}`)));
    const before = await historyIds(h, bob, conv);
    const s = await openSendStream(h, alice);
    s.write(msgs.map(line).join(''));
    s.end();
    t.ok(await s.closed);
    const end = s.answers.pop()!;
    t.same(end, { end: { lines: 120, accepted: 120, refused: 0 } });
    t.same(s.answers.map((a) => a.n), msgs.map((_, i) => i));
    t.same(s.answers.map((a) => a.receipt.id), msgs.map((m) => m.id));
    t.same((await historyIds(h, bob, conv)).slice(before.length), msgs.map((m) => m.id), 'stored in the order sent');
  });

  await t.test('when the session ends while the stream waits then it ends at once, says why, and stores nothing after', async (t) => {
    const { u: x, conv: xc } = await senderTo(h, 's-dave', bob);
    const [m1, m2] = await Promise.all([h.compose(x, xc, 'before logout'), h.compose(x, xc, 'after logout')]);
    const s = await openSendStream(h, x);
    s.write(line(m1));
    await s.until((a) => a.length === 1);
    t.ok(s.answers[0]!.receipt, 'the first line is stored');
    const out = await h.as(x)('/v1/auth/logout', { body: {} });
    t.equal(out.status, 200, JSON.stringify(out.body));
    await s.until((a) => a.some((l) => l.end));
    t.same(s.answers.at(-1), {
      end: { lines: 1, accepted: 1, refused: 0, error: { code: 'SESSION_INVALID', message: s.answers.at(-1)!.end.error.message } },
    });
    await s.closed; // the connection closes
    s.write(line(m2)); // written into a closed stream: it goes nowhere
    t.same(await historyIds(h, bob, xc), [m1.id], 'only what was answered is stored');
    const log = h.app.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.path === '/v1/messages/stream' && l.login === x.login);
    t.equal(log?.reason, 'SESSION_INVALID', 'the access log says why it ended');
  });

  await t.test('when someone else’s session ends then an open stream asks again and goes on', async (t) => {
    const other = await h.app.createStaff({ login: 's-gina', clearance: 'secret' });
    const [m1, m2] = await Promise.all([h.compose(alice, conv, 'before her logout'), h.compose(alice, conv, 'after her logout')]);
    const s = await openSendStream(h, alice);
    s.write(line(m1));
    await s.until((a) => a.length === 1);
    t.equal((await h.as(other)('/v1/auth/logout', { body: {} })).status, 200);
    s.write(line(m2));
    s.end();
    t.ok(await s.closed);
    t.same(s.answers.map((a) => (a.receipt ? a.receipt.id : a.end ? 'end' : a.error.code)), [m1.id, m2.id, 'end']);
    t.notOk(s.answers.at(-1)!.end.error, 'ended by the client, not by the announcement');
  });

  await t.test('when a line is over the limit then the stream stops reading there and stores nothing after', async (t) => {
    const { u: y, conv: yc } = await senderTo(h, 's-erin', bob);
    const [m1, m2] = await Promise.all([h.compose(y, yc, 'first'), h.compose(y, yc, 'after the big line')]);
    const s = await openSendStream(h, y);
    s.write(line(m1));
    s.write(`{"header":"${'a'.repeat(2 * 1024 * 1024)}"}\n`);
    s.write(line(m2));
    s.end();
    await s.closed;
    const end = s.answers.at(-1)!;
    t.equal(end.end?.error?.code, 'BODY_TOO_LARGE', JSON.stringify(end));
    t.equal(end.end.lines, 1);
    t.ok(s.answers[0]!.receipt);
    t.same(await historyIds(h, bob, yc), [m1.id], 'nothing after the big line is stored');
    t.equal((await h.as(y)('/v1/conversations')).status, 200, 'the account goes on working');
  });

  await t.test('when the server stops then the stream answers what it read and ends with UNAVAILABLE', async (t) => {
    const { u: z, conv: zc } = await senderTo(h, 's-frank', bob);
    const m1 = await h.compose(z, zc, 'in flight');
    const s = await openSendStream(h, z);
    s.write(line(m1));
    await s.until((a) => a.length === 1);
    // What the server's stop does first (main.ts): ends the live streams, the send streams with them.
    h.messaging.endLiveStreams();
    await s.until((a) => a.some((l) => l.end));
    t.equal(s.answers.at(-1)!.end.error.code, 'UNAVAILABLE');
    t.equal(s.answers.at(-1)!.end.accepted, 1);
    await s.closed;
  });

  await t.test('when the client goes away mid-stream then the server carries on', async (t) => {
    const msgs = await Promise.all(Array.from({ length: 10 }, (_, i) => h.compose(alice, conv, `gone ${i}`)));
    const s = await openSendStream(h, alice);
    s.write(msgs.map(line).join(''));
    s.destroy();
    await s.closed;
    // Whatever it read is stored or not, each whole; then everything works as before.
    const fresh = await h.compose(alice, conv, 'after the cut');
    const r = await h.as(alice)('/v1/messages', { body: { header: fresh.header, signature: fresh.signature, body: fresh.body } });
    t.equal(r.status, 201, JSON.stringify(r.body));
  });

  await t.test('when there is no session then the ordinary 401 error body, no stream', async (t) => {
    const r = await h.app.request('/v1/messages/stream', { body: {}, cert: alice.certPem, key: alice.keyPem });
    t.equal(r.status, 401);
    t.equal(r.body.error.code, 'AUTH_REQUIRED');
  });
});

t.test('a stream ends at its time limit, after answering what it read', async (t) => {
  const h = await httpHarness(t, { stream: { maxStreamMs: 400 } });
  const { u: a, peer: b, conv } = await senderTo(h, 't-alice', 't-bob');
  const m = await h.compose(a, conv, 'within the time');
  const s = await openSendStream(h, a);
  s.write(line(m));
  await s.until((x) => x.some((l) => l.end), 5000);
  t.same(s.answers.map((x) => x.n ?? 'end'), [0, 'end']);
  t.equal(s.answers.at(-1)!.end.error.code, 'STREAM_TIME_LIMIT');
  t.same(await historyIds(h, b, conv), [m.id]);
});

t.test('a stream whose session expired while idle stores nothing of its next line', async (t) => {
  let now = Date.now();
  const h = await httpHarness(t, { now: () => new Date(now), sessionIdleMs: 60_000, stream: { recheckMs: 1 } });
  const { u: a, conv } = await senderTo(h, 'e-alice', 'e-bob');
  const s = await openSendStream(h, a);
  now += 61_000; // the appliance's clock: the session's idle timeout has passed
  const m = await h.compose(a, conv, 'too late', { sentAt: new Date(now).toISOString() });
  s.write(line(m));
  await s.until((x) => x.some((l) => l.end));
  t.equal(s.answers.at(-1)!.end.error.code, 'SESSION_EXPIRED');
  t.equal(s.answers.at(-1)!.end.lines, 0);
  t.equal(s.answers.length, 1, 'only the end line');
  await s.closed;
});

t.test('an idle stream ends when its session idles out, not at its next line', async (t) => {
  // Real time: idle 4 s (a session is touched when last used over 400 ms ago).
  const IDLE = 4000;
  const h = await httpHarness(t, { sessionIdleMs: IDLE });
  const { u: a, conv } = await senderTo(h, 'i-alice', 'i-bob');
  const m = await h.compose(a, conv, 'then silence');
  const loggedInFrom = Date.now();
  const token = await h.app.loginAs(a.login, a.password, a.cert, a.key);
  const s = await openSendStream(h, a, { token });
  s.write(line(m));
  await s.until((x) => x.length === 1);
  const lastUse = Date.now();
  await s.until((x) => x.some((l) => l.end), IDLE + 5000);
  const endedAt = Date.now();
  t.equal(s.answers.at(-1)!.end.error.code, 'SESSION_EXPIRED');
  t.equal(s.answers.at(-1)!.end.accepted, 1);
  t.ok(endedAt - lastUse < IDLE + 2000, `ended ${endedAt - lastUse} ms after the last use (idle ${IDLE} ms)`);
  t.ok(endedAt - loggedInFrom >= IDLE - 50, 'not before its idle deadline');
  await s.closed;
});
