/**
 * Live delivery over Server-Sent Events on the real appliance: pushes, clearance and mute rules,
 * and resumption from Last-Event-ID without loss or duplicates.
 */
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { httpHarness, openEvents, type SseEvent } from '../messaging/http-harness.js';

const messageIds = (evs: SseEvent[]): string[] =>
  evs.filter((e) => e.event === 'message').map((e) => (JSON.parse(e.data) as { id: string }).id);

t.test('live events', async (t) => {
  // A short keep-alive, which is also the session re-check interval of open streams.
  const h = await httpHarness(t, { keepAliveMs: 200 });
  const alice = await h.app.createStaff({ login: 'v-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'v-bob', clearance: 'secret' });
  const carol = await h.app.createStaff({ login: 'v-carol', clearance: 'restricted' });
  const A = h.as(alice);
  const B = h.as(bob);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };
  const send = async (text: string, over: { urgent?: boolean; label?: 'restricted' | 'secret' } = {}, to = conv.id) => {
    const m = await h.compose(alice, to, text, over);
    const r = await A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
    return { id: m.id, seq: r.body.seq as number };
  };

  await t.test('when bob listens then alice’s messages arrive with their seq as event id', async (t) => {
    const es = await openEvents(h, bob);
    t.teardown(() => es.close());
    await es.until((evs) => evs.some((e) => e.event === 'ready'));
    const sent = [await send('live 1'), await send('live 2'), await send('live 3')];
    await es.until((evs) => messageIds(evs).length === 3);
    const msgs = es.events.filter((e) => e.event === 'message');
    t.same(msgs.map((e) => Number(e.id)), sent.map((s) => s.seq));
    const first = JSON.parse(msgs[0]!.data) as { header: string; body: string; signature: string };
    t.equal(Buffer.from(first.body, 'base64').toString(), 'live 1');
    t.ok(first.signature.length > 0);
    // Pushed counts as delivered: the sender sees a delivery receipt without bob fetching anything.
    let delivered: string[] = [];
    for (let i = 0; i < 50 && !delivered.includes(bob.login); i++) {
      await new Promise((r) => setTimeout(r, 100));
      delivered = (await A(`/v1/messages/${sent[2]!.id}/receipts`)).body.delivered.map((d: { login: string }) => d.login);
    }
    t.same(delivered, [bob.login]);
  });

  await t.test('when bob reconnects with Last-Event-ID then he gets exactly what he missed, then live', async (t) => {
    const es1 = await openEvents(h, bob);
    await es1.until((evs) => evs.some((e) => e.event === 'ready'));
    const before = await send('seen');
    await es1.until((evs) => messageIds(evs).includes(before.id));
    const lastSeen = Number(es1.events.filter((e) => e.event === 'message').at(-1)!.id);
    es1.close();
    const missed = [await send('missed 1'), await send('missed 2')];
    const es2 = await openEvents(h, bob, lastSeen);
    t.teardown(() => es2.close());
    await es2.until((evs) => evs.some((e) => e.event === 'ready'));
    t.same(messageIds(es2.events), missed.map((m) => m.id), 'replayed: the missed ones, in order, nothing before');
    const live = await send('after resume');
    await es2.until((evs) => messageIds(evs).includes(live.id));
    const ids = messageIds(es2.events);
    t.same(ids, [...missed.map((m) => m.id), live.id]);
    t.equal(new Set(ids).size, ids.length, 'no duplicates');
  });

  await t.test('when messages are sent during the replay then none is lost or doubled', async (t) => {
    const base = await send('base');
    const burst = Promise.all(Array.from({ length: 20 }, (_, i) => send(`burst ${i}`)));
    const es = await openEvents(h, bob, base.seq);
    t.teardown(() => es.close());
    const sent = await burst;
    await es.until((evs) => sent.every((s) => messageIds(evs).includes(s.id)));
    const ids = messageIds(es.events);
    t.equal(new Set(ids).size, ids.length, 'no duplicates');
    t.same(new Set(ids), new Set(sent.map((s) => s.id)), 'exactly the burst');
    const seqs = es.events.filter((e) => e.event === 'message').map((e) => Number(e.id));
    t.same(seqs, [...seqs].sort((a, b) => a - b), 'in seq order');
  });

  await t.test('when bob muted the conversation then only urgent messages are pushed', async (t) => {
    await B(`/v1/conversations/${conv.id}/mute`, { body: { muted: true } });
    const es = await openEvents(h, bob);
    t.teardown(() => es.close());
    await es.until((evs) => evs.some((e) => e.event === 'ready'));
    const quiet = await send('quiet');
    const loud = await send('URGENT', { urgent: true });
    await es.until((evs) => messageIds(evs).includes(loud.id));
    t.notOk(messageIds(es.events).includes(quiet.id), 'the muted non-urgent message was not pushed');
    const page = await B(`/v1/conversations/${conv.id}/messages?limit=2`);
    t.ok(page.body.messages.some((m: { id: string }) => m.id === quiet.id), 'but it is in the history');
    await B(`/v1/conversations/${conv.id}/mute`, { body: { muted: false } });
  });

  await t.test('when a message is above a member’s clearance then it is never pushed to them', async (t) => {
    const g = await A('/v1/groups', { body: { name: 'v-group', label: 'restricted' } });
    await A('/v1/groups/v-group/members', { body: { login: carol.login } });
    const es = await openEvents(h, carol);
    t.teardown(() => es.close());
    await es.until((evs) => evs.some((e) => e.event === 'ready'));
    const ok = await send('for all', { label: 'restricted' }, g.body.id);
    await es.until((evs) => messageIds(evs).includes(ok.id));
    t.pass('restricted message reached the restricted member');
  });

  await t.test('when a message is deleted then listeners get a deleted event', async (t) => {
    const es = await openEvents(h, bob);
    t.teardown(() => es.close());
    await es.until((evs) => evs.some((e) => e.event === 'ready'));
    const m = await send('soon gone');
    await es.until((evs) => messageIds(evs).includes(m.id));
    const del = await A(`/v1/messages/${m.id}`, { method: 'DELETE', body: await h.deleteBody(alice, `message:${m.id}`) });
    t.equal(del.status, 200);
    await es.until((evs) => evs.some((e) => e.event === 'deleted'));
    const d = JSON.parse(es.events.find((e) => e.event === 'deleted')!.data) as { conversation: string; ids: string[] };
    t.same(d, { conversation: conv.id, ids: [m.id] });
  });

  await t.test('when bob reads then alice gets a receipt event', async (t) => {
    const es = await openEvents(h, alice);
    t.teardown(() => es.close());
    await es.until((evs) => evs.some((e) => e.event === 'ready'));
    const m = await send('read me');
    await B(`/v1/conversations/${conv.id}/read`, { body: { upTo: m.seq } });
    await es.until((evs) => evs.some((e) => e.event === 'receipt' && JSON.parse(e.data).kind === 'read'));
    t.pass();
  });

  await t.test('when the listener’s certificate is revoked then the open stream ends', async (t) => {
    const rbob = await h.app.createStaff({ login: 'r-bob', clearance: 'secret' });
    const es = await openEvents(h, rbob);
    t.teardown(() => es.close());
    await es.until((evs) => evs.some((e) => e.event === 'ready'));
    await new Promise((r) => setTimeout(r, 500));
    t.notOk(es.ended, 'control: the stream stays open while the session is valid');
    const rv = await h.app.request(`/v1/certificates/${rbob.cert.serialNumber}/revoke`, {
      token: h.app.officer.token,
      body: { reason: 'keyCompromise' },
    });
    t.equal(rv.status, 200, JSON.stringify(rv.body));
    await es.until(() => es.ended, 5000);
    t.ok(es.ended);
  });
});

t.test('live delivery at scale', async (t) => {
  const h = await httpHarness(t, { keepAliveMs: 200 });
  const alice = await h.app.createStaff({ login: 'b-alice', clearance: 'secret' });
  const A = h.as(alice);
  const readers: Awaited<ReturnType<typeof h.app.createStaff>>[] = [];
  for (let i = 0; i < 4; i++) readers.push(await h.app.createStaff({ login: `b-reader${i}`, clearance: 'secret' }));
  const g = (await A('/v1/groups', { body: { name: 'b-group', label: 'restricted' } })).body as { id: string };
  for (const r of readers) await A('/v1/groups/b-group/members', { body: { login: r.login } });
  const send = async (text: string) => {
    const m = await h.compose(alice, g.id, text);
    const r = await A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
    return { id: m.id, seq: r.body.seq as number };
  };

  await t.test('when two streams share a session and it ends then both end within one interval', async (t) => {
    const u = await h.app.createStaff({ login: 'b-leaver', clearance: 'secret' });
    const streams = [await openEvents(h, u), await openEvents(h, u)];
    t.teardown(() => streams.forEach((s) => s.close()));
    for (const s of streams) await s.until((evs) => evs.some((e) => e.event === 'ready'));
    await new Promise((r) => setTimeout(r, 500));
    t.notOk(streams.some((s) => s.ended), 'control: open while the session is valid (keep-alives pass)');
    t.equal((await h.as(u)('/v1/auth/logout', { method: 'POST', body: {} })).status, 200);
    for (const s of streams) await s.until(() => s.ended, 2000);
    t.pass('both ended');
  });

  await t.test('when many live connections get messages then their receipts are written and survive a graceful stop', async (t) => {
    // 20 connections: 5 per reader, as several devices or tabs of one person would be.
    const streams: Awaited<ReturnType<typeof openEvents>>[] = [];
    for (const r of readers) for (let k = 0; k < 5; k++) streams.push(await openEvents(h, r));
    t.teardown(() => streams.forEach((s) => s.close()));
    for (const s of streams) await s.until((evs) => evs.some((e) => e.event === 'ready'));
    const sent = [await send('to all 1'), await send('to all 2'), await send('to all 3')];
    for (const s of streams) await s.until((evs) => sent.every((m) => messageIds(evs).includes(m.id)));
    // What `sigil-server` does on SIGTERM once the listener stopped: close messaging, then the vault.
    await h.messaging.close();
    for (const s of streams) await s.until(() => s.ended, 2000);
    const db = h.app.appliance.vault.db;
    for (const r of readers) {
      const row = await db.get<{ s: number }>('SELECT delivered_seq AS s FROM msg_members WHERE conversation = ? AND login = ?', [g.id, r.login]);
      t.equal(row?.s, sent[2]!.seq, `${r.login}: delivered up to the last message pushed`);
    }
    const receipts = await A(`/v1/messages/${sent[2]!.id}/receipts`);
    t.same(
      receipts.body.delivered.map((d: { login: string }) => d.login).sort(),
      readers.map((r) => r.login).sort(),
      'the sender sees every reader’s delivery receipt',
    );
  });
});

t.test('ending sessions closes open streams at once, not at the next keep-alive', async (t) => {
  // The appliance's own interval: 15 s. Before, a downgraded or revoked listener's stream stayed
  // open until then and received what was published meanwhile, above the new clearance too.
  const h = await httpHarness(t, { keepAliveMs: 15_000 });
  const alice = await h.app.createStaff({ login: 'd-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'd-bob', clearance: 'secret' });
  const A = h.as(alice);
  const g = (await A('/v1/groups', { body: { name: 'd-group', label: 'secret' } })).body as { id: string };
  t.equal((await A('/v1/groups/d-group/members', { body: { login: bob.login } })).status, 200);
  const es = await openEvents(h, bob);
  t.teardown(() => es.close());
  await es.until((evs) => evs.some((e) => e.event === 'ready'));
  const lowered = await h.app.request(`/v1/users/${bob.login}/clearance`, { token: h.app.officer.token, body: { clearance: 'restricted' } });
  t.equal(lowered.status, 200, JSON.stringify(lowered.body));
  await es.until(() => es.ended, 3000);
  t.ok(es.ended, 'the stream ended well before the 15 s keep-alive');
  const m = await h.compose(alice, g.id, 'secret after the downgrade', { label: 'secret' });
  t.equal((await A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } })).status, 201);
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(messageIds(es.events).includes(m.id), 'the secret message did not reach the downgraded listener');
});

t.test('when the client is gone before the stream starts then nothing is delivered to it', async (t) => {
  // A request whose session is due for its idle touch spends a write in the middleware; a client
  // that resets the connection meanwhile was gone before the stream registered its 'close'
  // listener. Its subscription then lived on: events went to a dead socket and were recorded as
  // delivered. (Idle 20 s: a session is touched when it was last used over 2 s ago.)
  const h = await httpHarness(t, { keepAliveMs: 500, sessionIdleMs: 20_000 });
  const alice = await h.app.createStaff({ login: 'x-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'x-bob', clearance: 'secret' });
  const A = h.as(alice);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };
  const url = new URL(h.app.url);
  for (let attempt = 0; attempt < 3; attempt++) {
    await new Promise((r) => setTimeout(r, 2500)); // past the touch interval: the next request writes
    const raw = net.connect(Number(url.port), url.hostname);
    raw.on('error', () => undefined);
    const sock = tls.connect({ socket: raw, ca: h.app.caPem, cert: bob.certPem, key: bob.keyPem, minVersion: 'TLSv1.3' });
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', () => resolve());
      sock.once('error', reject);
    });
    sock.on('error', () => undefined);
    sock.write(`GET /v1/events HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${bob.token}\r\nAccept: text/event-stream\r\n\r\n`);
    await new Promise((r) => setImmediate(r));
    raw.resetAndDestroy();
  }
  await new Promise((r) => setTimeout(r, 1000));
  const m = await h.compose(alice, conv.id, 'nobody is listening');
  t.equal((await A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } })).status, 201);
  await new Promise((r) => setTimeout(r, 1500));
  const receipts = await A(`/v1/messages/${m.id}/receipts`);
  t.same(receipts.body.delivered, [], 'no delivery is recorded for bob, who has no open stream');
});
