/**
 * bench/lib/stream-client.ts, the messages bench's send-stream client: against a real appliance it
 * must count every answer once, keep no more than its window in flight, stop when told, and report
 * the server's end line — benches never assert, so a client that miscounted would only show as a
 * strange figure.
 */
import t from 'tap';
import { runStream, type StreamAnswer } from '../../bench/lib/stream-client.js';
import { httpHarness } from '../server/messaging/http-harness.js';

t.test('when the stream client sends through a real appliance then every line is answered once and counted', async (t) => {
  const h = await httpHarness(t, { stream: { maxInFlight: 64 } });
  const alice = await h.app.createStaff({ login: 'sc-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'sc-bob', clearance: 'secret' });
  const conv = (await h.as(alice)('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  const msgs = await Promise.all(Array.from({ length: 30 }, (_, i) => h.compose(alice, conv, `line ${i}`)));
  const line = (m: (typeof msgs)[number]): Buffer => Buffer.from(`${JSON.stringify({ header: m.header, signature: m.signature, body: m.body })}\n`);
  // The same message twice: a refusal (replay) the client must count as one.
  const lines = [...msgs.map(line), line(msgs[0]!)];
  const creds = { ca: h.app.caPem, cert: alice.certPem, key: alice.keyPem, token: alice.token };
  const url = new URL(h.app.url);

  const answers: StreamAnswer[] = [];
  const r = await runStream(url, creds, lines, 3, () => true, (a) => answers.push(a));
  t.same(r, { end: { lines: 31, accepted: 30, refused: 1 }, exhausted: true }, 'the end line; it ran out of lines');
  t.equal(answers.length, 31);
  t.equal(answers.filter((a) => a.ok).length, 30);
  t.same(answers.filter((a) => !a.ok).map((a) => a.refusal), ['409 MESSAGE_REPLAY']);
  t.ok(answers.every((a) => a.ms >= 0));
  const page = (await h.as(bob)(`/v1/conversations/${conv}/messages?limit=100`)).body.messages as { id: string }[];
  t.same(page.map((m) => m.id).reverse(), msgs.map((m) => m.id), 'stored once each, in order');

  // Told to stop at once: it ends its body without sending, and the stream ends cleanly.
  const stopped = await runStream(url, creds, lines, 3, () => false, () => t.fail('nothing was sent'));
  t.same(stopped, { end: { lines: 0, accepted: 0, refused: 0 }, exhausted: false });

  // A bad token: the failure is reported, not a count.
  const refused = await runStream(url, { ...creds, token: 'x'.repeat(32) }, lines, 3, () => true, () => t.fail('no answers'));
  t.equal(refused.failure, 'HTTP 401');
});
