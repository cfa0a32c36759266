/**
 * `POST /v1/messages/batch` over the real appliance (TLS client certificates, sessions, the routes
 * as mounted): each message is accepted or refused on its own, the accepted ones are stored in the
 * order given, and a batch whose shape is wrong stores nothing.
 */
import t from 'tap';
import { httpHarness } from '../messaging/http-harness.js';

interface Item {
  receipt?: { id: string; seq: number; conversation: string; serverTime: string; audit?: { index: number } };
  error?: { code: string; message: string; status: number };
}

t.test('messages in batches', async (t) => {
  const h = await httpHarness(t, { captureLogs: true });
  const alice = await h.app.createStaff({ login: 'b-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'b-bob', clearance: 'secret' });
  const carol = await h.app.createStaff({ login: 'b-carol', clearance: 'secret' });
  const A = h.as(alice);
  const B = h.as(bob);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };
  const other = (await B('/v1/conversations/direct', { body: { peer: carol.login } })).body as { id: string };
  const send = (m: { header: string; signature: string; body: string }) => ({ header: m.header, signature: m.signature, body: m.body });
  const history = async (): Promise<{ id: string; seq: number }[]> =>
    (await B(`/v1/conversations/${conv.id}/messages?limit=200`)).body.messages as { id: string; seq: number }[];

  await t.test('when a batch mixes good and bad messages then each gets its own answer and the good ones are stored in order', async (t) => {
    const good = await Promise.all(['one', 'two', 'three', 'four'].map((b) => h.compose(alice, conv.id, b)));
    const forged = await h.compose(alice, conv.id, 'forged');
    const stranger = await h.compose(alice, other.id, 'not my conversation');
    const batch = [
      send(good[0]!),
      { ...send(forged), signature: good[1]!.signature }, // a signature over other bytes
      send(good[1]!),
      send(good[0]!), // the same message twice in one batch
      send(stranger),
      send(good[2]!),
      send(good[3]!),
    ];
    const r = await A('/v1/messages/batch', { body: { messages: batch } });
    t.equal(r.status, 200, JSON.stringify(r.body));
    const results = r.body.results as Item[];
    t.equal(results.length, batch.length, 'one result per message, in order');

    const receipts = [0, 2, 5, 6].map((i) => results[i]!.receipt!);
    t.same(receipts.map((x) => x.id), [good[0]!.id, good[1]!.id, good[2]!.id, good[3]!.id]);
    const seqs = receipts.map((x) => x.seq);
    t.same([...seqs].sort((a, b) => a - b), seqs, 'sequence numbers ascend in the order given');
    for (const x of receipts) {
      t.equal(x.conversation, conv.id);
      t.type(x.audit?.index, 'number', 'each accepted message has its audit entry');
    }
    t.same(results[1]!.error && { code: results[1]!.error.code, status: results[1]!.error.status }, { code: 'MESSAGE_BAD_SIGNATURE', status: 422 });
    t.same(results[3]!.error && { code: results[3]!.error.code, status: results[3]!.error.status }, { code: 'MESSAGE_REPLAY', status: 409 });
    t.equal(results[4]!.error?.status, 404, JSON.stringify(results[4]));
    for (const i of [1, 3, 4]) {
      t.notOk(results[i]!.receipt, `item ${i} has no receipt`);
      t.type(results[i]!.error?.message, 'string');
    }

    // Bob reads exactly the accepted ones, in the order given; the refused ones do not exist.
    const page = await history();
    t.same(page.map((m) => m.id).reverse(), good.map((m) => m.id));
    t.equal((await A(`/v1/messages/${forged.id}`)).status, 404);
    t.equal((await A(`/v1/messages/${stranger.id}`)).status, 404);
    const one = await B(`/v1/messages/${good[2]!.id}`);
    t.equal(Buffer.from(one.body.body as string, 'base64').toString(), 'three', 'stored and opened like any message');

    // Answered 200 as a whole: the access log says what its messages got (counts and codes only).
    const line = h.app.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.path === '/v1/messages/batch' && l.count === batch.length);
    t.ok(line, 'the batch has its access-log line');
    t.equal(line?.status, 200);
    t.equal(line?.accepted, 4);
    t.equal(line?.refused, 3);
    t.same(String(line?.codes).split(',').sort(), ['MESSAGE_BAD_SIGNATURE:1', 'MESSAGE_REPLAY:1', `${results[4]!.error!.code}:1`].sort());
    const raw = h.app.logs.find((l) => l.includes(`"count":${batch.length}`)) ?? '';
    t.notOk(raw.includes(good[0]!.id) || raw.includes('signature'), 'no message id, header or signature in it');
  });

  await t.test('when an item has the wrong shape then 400 and nothing of the batch is stored', async (t) => {
    const before = (await history()).length;
    const ok = await h.compose(alice, conv.id, 'would be fine alone');
    const r = await A('/v1/messages/batch', { body: { messages: [send(ok), { header: 'x', signature: 'y', body: 42 }] } });
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'BAD_REQUEST');
    t.match(r.body.error.message, /messages/);
    t.equal((await history()).length, before, 'the good message was not stored either');
    t.equal((await A(`/v1/messages/${ok.id}`)).status, 404);
  });

  await t.test('when a batch is empty, too long, not a list or has extra fields then 400', async (t) => {
    const ok = send(await h.compose(alice, conv.id, 'x'));
    const max = h.messaging.config.maxBatchMessages;
    for (const body of [{ messages: [] }, { messages: Array.from({ length: max + 1 }, () => ok) }, { messages: ok }, { messages: [ok], extra: 1 }, {}]) {
      const r = await A('/v1/messages/batch', { body });
      t.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
      t.equal(r.body.error.code, 'BAD_REQUEST');
    }
  });

  await t.test('when a full batch is larger than the small JSON limit then it is still accepted whole', async (t) => {
    const max = h.messaging.config.maxBatchMessages;
    const kib = 'k'.repeat(1024);
    // A conversation of its own, so the other subtests' counts stay small and exact.
    const wide = (await A('/v1/conversations/direct', { body: { peer: carol.login } })).body as { id: string };
    const ms = await Promise.all(Array.from({ length: max }, (_, i) => h.compose(alice, wide.id, `${i} ${kib}`)));
    const body = { messages: ms.map(send) };
    t.ok(JSON.stringify(body).length > 64 * 1024, 'over the 64 KiB limit of the other messaging routes');
    const r = await A('/v1/messages/batch', { body });
    t.equal(r.status, 200, JSON.stringify(r.body).slice(0, 200));
    t.equal((r.body.results as Item[]).filter((x) => x.receipt).length, max, `all ${max} accepted`);
  });

  await t.test('when a batch is over one message’s body limit then 413 and nothing is stored', async (t) => {
    const before = (await history()).length;
    const big = 'A'.repeat(Math.ceil(h.messaging.config.maxBodyBytes / 3) * 4);
    const small = send(await h.compose(alice, conv.id, 'small'));
    const r = await A('/v1/messages/batch', { body: { messages: [small, { ...small, body: big }, { ...small, body: big }] } });
    t.equal(r.status, 413);
    t.equal(r.body.error.code, 'BODY_TOO_LARGE');
    t.equal((await history()).length, before);
  });

  await t.test('when the session is missing then 401 as on every messaging route', async (t) => {
    const r = await h.app.request('/v1/messages/batch', { body: { messages: [] }, cert: alice.certPem, key: alice.keyPem });
    t.equal(r.status, 401);
  });

  await t.test('when another user sends a batch then every message of it is refused as not theirs', async (t) => {
    const m = await h.compose(alice, conv.id, 'mine');
    const r = await B('/v1/messages/batch', { body: { messages: [send(m)] } });
    t.equal(r.status, 200);
    t.equal(r.body.results[0].error.code, 'MESSAGE_SENDER_MISMATCH');
    t.equal(r.body.results[0].error.status, 403);
  });
});
