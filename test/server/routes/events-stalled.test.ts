/**
 * A reader that stops reading its `/v1/events` stream (paused client, congested socket): what the
 * server still holds for it. A message deleted while it waited in that reader's queue is never
 * sent afterwards (irreversible means irreversible), and the queue is bounded by bytes, not only
 * by count: the stream ends once it passes the cap and the client resumes with Last-Event-ID.
 * The same holds for a resume whose replay waits for the reader: a message deleted meanwhile is
 * not written from the page the replay read before.
 */
import https from 'node:https';
import t from 'tap';
import type { Subscription } from '../../../server/messaging/index.js';
import type { TestUser } from '../../helpers/appliance.js';
import { httpHarness, openEvents, type HttpHarness, type SseEvent } from '../messaging/http-harness.js';

const BIG = new Uint8Array(1024 * 1024).fill(0x41); // the largest body a message may have
const SECRET = 'CONTENT THAT MUST BE DESTROYED';

/** Every subscription the service hands out from now on (the route's, for a look at its queue). */
function subscriptions(h: HttpHarness): Subscription[] {
  const subs: Subscription[] = [];
  const subscribe = h.messaging.subscribe.bind(h.messaging);
  h.messaging.subscribe = (p) => {
    const s = subscribe(p);
    subs.push(s);
    return s;
  };
  return subs;
}

/**
 * `/v1/events` as `u`, paused once the stream is live: the client stops reading its socket. With
 * `lastEventId`, a resume, paused at its first replayed message: the replay fills the socket and
 * waits for it to drain.
 */
async function stalledReader(h: HttpHarness, u: TestUser, lastEventId?: number) {
  const url = new URL('/v1/events', h.app.url);
  let text = '';
  let ended = false;
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = https.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'GET',
        headers: {
          accept: 'text/event-stream',
          authorization: `Bearer ${u.token}`,
          ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }),
        },
        ca: h.app.caPem,
        cert: u.certPem,
        key: u.keyPem,
        agent: false,
        minVersion: 'TLSv1.3',
      },
      resolve,
    );
    req.on('error', reject);
    req.end();
  });
  res.setEncoding('utf8');
  let paused = false;
  res.on('data', (c: string) => {
    text += c;
    // A resume stops reading at its first replayed message.
    if (lastEventId !== undefined && !paused && text.includes('event: message')) {
      paused = true;
      res.pause();
    }
  });
  res.on('end', () => (ended = true));
  res.on('close', () => (ended = true)); // a cut connection closes without an end
  res.on('error', () => undefined);
  const until = async (pred: () => boolean, ms: number, what: string): Promise<void> => {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > ms) throw new Error(`${what} not seen in ${ms} ms (${text.length} chars read, ended=${ended})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  if (lastEventId === undefined) {
    await until(() => text.includes('event: ready'), 10_000, 'ready');
    res.pause();
  }
  return {
    until,
    get text() {
      return text;
    },
    get ended() {
      return ended;
    },
    resume: () => res.resume(),
    close: () => res.destroy(),
    /** The SSE events read so far. */
    events(): SseEvent[] {
      return text
        .split('\n\n')
        .filter((b) => b.startsWith('event: '))
        .map((b) => {
          const ev: SseEvent = { event: '', data: '' };
          for (const line of b.split('\n')) {
            const i = line.indexOf(': ');
            const [k, v] = [line.slice(0, i), line.slice(i + 2)];
            if (k === 'event') ev.event = v;
            else if (k === 'id') ev.id = v;
            else if (k === 'data') ev.data = v;
          }
          return ev;
        });
    },
  };
}

async function setup(t: Parameters<typeof httpHarness>[0], opts: { eventQueueMaxBytes?: number }, tag: string) {
  const h = await httpHarness(t, opts);
  const alice = await h.app.createStaff({ login: `${tag}-alice`, clearance: 'secret' });
  const bob = await h.app.createStaff({ login: `${tag}-bob`, clearance: 'secret' });
  const A = h.as(alice);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };
  const send = async (body: string | Uint8Array): Promise<{ id: string; seq: number }> => {
    const m = await h.compose(alice, conv.id, body);
    const r = await A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
    return { id: m.id, seq: r.body.seq as number };
  };
  return { h, alice, bob, A, conv, send };
}

/**
 * Alice and bob in a direct conversation, bob's stream stalled, and alice's largest messages sent
 * until the hub has to queue for him: `sent` were written to the socket (the last one filled it),
 * `sub` is bob's subscription.
 */
async function congested(t: Parameters<typeof httpHarness>[0], tag: string) {
  // A byte cap far above what these tests queue: here the stream must stay open.
  const s = await setup(t, { eventQueueMaxBytes: 256 * 1024 * 1024 }, tag);
  const subs = subscriptions(s.h);
  const reader = await stalledReader(s.h, s.bob);
  t.teardown(() => void reader.close());
  const sub = subs[0]!;
  const sent: string[] = [];
  for (let i = 0; i < 64 && sub.queued === 0; i++) sent.push((await s.send(BIG)).id);
  return { ...s, reader, sub, sent };
}

const messageIds = (evs: SseEvent[]): string[] =>
  evs.filter((e) => e.event === 'message').map((e) => (JSON.parse(e.data) as { id: string }).id);

t.test('when a message is deleted while it waits for a stalled reader then the reader gets the deletion, never the message', async (t) => {
  // From the first queued event on, every event waits in the subscription.
  const { h, alice, A, conv, send, reader, sub, sent: fillers } = await congested(t, 'st1');
  t.ok(sub.queued > 0, `the reader is congested after ${fillers.length} MiB`);
  const queued = sub.queued;
  const secret = await send(SECRET);
  t.equal(sub.queued, queued + 1, 'the message waits in the queue, body included');

  const del = await A(`/v1/messages/${secret.id}`, { method: 'DELETE', body: await h.deleteBody(alice, `message:${secret.id}`) });
  t.equal(del.status, 200, 'deletion returned: rows gone, keys destroyed');
  t.notOk(sub.closed, 'the stream stays open');

  reader.resume();
  await reader.until(() => reader.text.includes('event: deleted'), 30_000, 'the deleted event');
  const evs = reader.events();
  t.same(messageIds(evs), fillers, 'every other message arrives, in order');
  t.notOk(reader.text.includes(Buffer.from(SECRET).toString('base64')), 'the destroyed body is never sent');
  t.notOk(reader.text.includes(`"id":"${secret.id}"`), 'nor the deleted message at all');
  const deleted = evs.filter((e) => e.event === 'deleted').map((e) => JSON.parse(e.data) as unknown);
  t.same(deleted, [{ conversation: conv.id, ids: [secret.id] }], 'the deletion itself goes out');
});

t.test('when a stalled reader’s queue passes the byte cap then its stream ends and it resumes without loss', async (t) => {
  // The default cap (4 MiB): a handful of the largest messages.
  const { h, bob, send } = await setup(t, {}, 'st2');
  const subs = subscriptions(h);
  const reader = await stalledReader(h, bob);
  t.teardown(() => reader.close());
  const sub = subs[0]!;
  const sent: string[] = [];
  // Until the hub queues, then on until the stream is dropped; a count cap of 1024 alone would
  // let it hold hundreds of MiB (stop at 8 queued messages: already ~11 MB).
  for (let i = 0; i < 64 && !sub.closed && sub.queued < 8; i++) sent.push((await send(BIG)).id);
  t.ok(sub.closed && sub.dropped, `dropped once past the byte cap (${sent.length} MiB sent, ${sub.queued} queued)`);

  reader.resume();
  await reader.until(() => reader.ended, 20_000, 'the end of the stream');
  const got = messageIds(reader.events());
  t.ok(got.length < sent.length, `${got.length} of ${sent.length} pushed before the stream ended`);
  t.same(got, sent.slice(0, got.length), 'what arrived came in order');

  // The client resumes from the last id it read: the vault has the rest.
  const last = Number(reader.events().filter((e) => e.event === 'message').at(-1)?.id ?? 0);
  const es = await openEvents(h, bob, last);
  t.teardown(() => es.close());
  await es.until((evs) => evs.some((e) => e.event === 'ready'), 30_000);
  t.same(messageIds(es.events), sent.slice(got.length), 'nothing lost');
});

t.test('when a deletion has committed its rows then the queued copy is gone before its keys and checkpoints finish', async (t) => {
  // The deletion answers only after keys.db and both checkpoints; a reader catching up in that
  // time must not get the content whose rows are already gone. The checkpoint is held open here.
  const { h, alice, A, send, sub } = await congested(t, 'st3');
  const queued = sub.queued;
  const secret = await send(SECRET);
  t.equal(sub.queued, queued + 1);
  const db = h.app.appliance.vault.db;
  const checkpoint = db.checkpointTruncate.bind(db);
  let reached!: () => void;
  const atCheckpoint = new Promise<void>((r) => (reached = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  db.checkpointTruncate = async () => {
    reached();
    await released;
    return checkpoint();
  };
  t.teardown(() => void (db.checkpointTruncate = checkpoint));
  const del = A(`/v1/messages/${secret.id}`, { method: 'DELETE', body: await h.deleteBody(alice, `message:${secret.id}`) });
  await atCheckpoint;
  t.equal(sub.queued, queued, 'the deleted message left the queue when its rows went');
  release();
  t.equal((await del).status, 200);
});

t.test('when a message still waiting in the socket buffer is deleted then the connection is cut, not flushed', async (t) => {
  // The write that found the socket full holds its whole frame in this process; the hub's queue
  // cannot take it back. The stream is cut instead; the client resumes without what was deleted.
  const { h, alice, A, reader, sub, sent } = await congested(t, 'st4');
  t.ok(sub.queued === 1 && sent.length >= 2, `congested after ${sent.length} MiB`);
  const inBuffer = sent.at(-2)!; // written when the socket filled: its frame waits in the buffer
  const del = await A(`/v1/messages/${inBuffer}`, { method: 'DELETE', body: await h.deleteBody(alice, `message:${inBuffer}`) });
  t.equal(del.status, 200);
  reader.resume();
  await reader.until(() => reader.ended, 20_000, 'the end of the cut stream');
  // Only whole frames count: the cut may leave the head of one that never arrived in full.
  const whole = reader.text.slice(0, reader.text.lastIndexOf('\n\n') + 2);
  t.notOk(whole.includes(`"id":"${inBuffer}"`), 'the deleted message never arrives whole');
});

t.test('when a message is deleted while a resume’s replay waits for the reader then the replay leaves it out', async (t) => {
  // The replay reads a page (here all of it), then writes it while the reader drains: what a
  // deletion removes meanwhile was read before it, and used to be written all the same.
  const { h, alice, A, bob, send } = await setup(t, {}, 'st5');
  const sent: string[] = [];
  for (let i = 0; i < 12; i++) sent.push((await send(BIG)).id);
  const reader = await stalledReader(h, bob, 0);
  t.teardown(() => void reader.close());
  await reader.until(() => reader.text.includes('event: message'), 10_000, 'the first replayed message');
  await new Promise((r) => setTimeout(r, 300)); // the replay now waits for the paused reader to drain
  t.notOk(reader.text.includes('event: ready'), 'control: the replay has not finished');
  const last = sent.at(-1)!;
  const del = await A(`/v1/messages/${last}`, { method: 'DELETE', body: await h.deleteBody(alice, `message:${last}`) });
  t.equal(del.status, 200);
  reader.resume();
  await reader.until(() => reader.text.includes('event: ready') || reader.ended, 30_000, 'the end of the replay');
  const whole = reader.text.slice(0, reader.text.lastIndexOf('\n\n') + 2);
  t.notOk(whole.includes(`"id":"${last}"`), 'the message deleted during the replay is not sent');
  t.ok(reader.text.includes('event: ready'), 'the replay finished and the stream went live');
  t.same(messageIds(reader.events()), sent.slice(0, -1), 'every other message was replayed, in order');
});
