/**
 * Resuming `/v1/events` from a Last-Event-ID above anything the vault ever numbered (the appliance
 * restored from an older backup, or a bogus id). Live events at or below the resume point are
 * skipped as already seen, so resuming from such an id hid every new message until the sequence
 * climbed past it. Found in review: the stream resumes from the vault's high-water mark instead.
 */
import t from 'tap';
import { httpHarness, openEvents, type SseEvent } from '../messaging/http-harness.js';

const messageIds = (evs: SseEvent[]): string[] =>
  evs.filter((e) => e.event === 'message').map((e) => (JSON.parse(e.data) as { id: string }).id);
const readyOf = (evs: SseEvent[]): { lastEventId: number } | undefined => {
  const r = evs.find((e) => e.event === 'ready');
  return r ? (JSON.parse(r.data) as { lastEventId: number }) : undefined;
};

t.test('resuming from a Last-Event-ID above the high-water mark', async (t) => {
  const h = await httpHarness(t, { keepAliveMs: 200, captureLogs: true });
  const alice = await h.app.createStaff({ login: 'h-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'h-bob', clearance: 'secret' });
  const A = h.as(alice);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };
  const send = async (text: string) => {
    const m = await h.compose(alice, conv.id, text);
    const r = await A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
    return { id: m.id, seq: r.body.seq as number };
  };
  const highWater = async (): Promise<number> =>
    (await h.app.appliance.vault.db.get<{ hi: number }>('SELECT hi FROM msg_sequence'))!.hi;

  // The newest message deleted: the high-water mark (never lowered) is then above every seq that
  // still exists, so the mark, not the largest stored seq, is what the stream must resume from.
  await send('kept');
  const gone = await send('deleted later');
  const del = await A(`/v1/messages/${gone.id}`, { method: 'DELETE', body: await h.deleteBody(alice, `message:${gone.id}`) });
  t.equal(del.status, 200, 'control: the newest message deleted');
  const hi = await highWater();
  t.equal(hi, gone.seq, 'control: the mark stays at the deleted message’s seq');

  await t.test('when bob resumes from an id far above any seq then new messages still reach him live', async (t) => {
    const es = await openEvents(h, bob, 1_000_000);
    t.teardown(() => es.close());
    await es.until((evs) => readyOf(evs) !== undefined);
    t.same(readyOf(es.events), { lastEventId: hi }, 'ready names the position the stream really resumed from');
    t.same(messageIds(es.events), [], 'nothing replayed: nothing exists above the mark');
    const live = await send('after the resume');
    t.ok(live.seq > hi && live.seq < 1_000_000, 'control: the new seq is below the id bob gave');
    await es.until((evs) => messageIds(evs).includes(live.id), 5000);
    t.same(messageIds(es.events), [live.id]);
    t.equal(Number(es.events.find((e) => e.event === 'message')!.id), live.seq);

    const warned = h.app.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === 'warn' && String(l.msg).includes('high-water'));
    t.equal(warned.length, 1, 'the server logged the resume from the mark');
    t.equal(warned[0]?.login, bob.login);
    t.match(String(warned[0]?.reason), new RegExp(`1000000\\b.*\\b${hi}\\b`), 'with the id given and the mark');
    t.notOk(h.app.logs.some((l) => l.includes('after the resume') || l.includes('deleted later')), 'no message content in the log');
  });

  await t.test('when bob resumes from exactly the high-water mark then nothing changes and nothing is logged', async (t) => {
    const mark = await highWater();
    const logged = h.app.logs.length;
    const es = await openEvents(h, bob, mark);
    t.teardown(() => es.close());
    await es.until((evs) => readyOf(evs) !== undefined);
    t.same(readyOf(es.events), { lastEventId: mark });
    t.same(messageIds(es.events), []);
    const live = await send('at the mark');
    await es.until((evs) => messageIds(evs).includes(live.id), 5000);
    t.notOk(h.app.logs.slice(logged).some((l) => l.includes('high-water')), 'no resume-from-mark warning');
  });

  await t.test('when messages are sent while bob resumes from a huge id then none is lost or doubled', async (t) => {
    // Committed before the stream reads the mark: at or below it, already seen by the position.
    // After: above it, replayed or pushed live. So what arrives is every message from some seq on,
    // each once, in order, and at least everything above the position ready names.
    const burst = Promise.all(Array.from({ length: 20 }, (_, i) => send(`burst ${i}`)));
    const es = await openEvents(h, bob, 1_000_000);
    t.teardown(() => es.close());
    const sent = (await burst).sort((a, b) => a.seq - b.seq);
    await es.until((evs) => readyOf(evs) !== undefined);
    const ready = readyOf(es.events)!.lastEventId;
    await es.until((evs) => sent.filter((s) => s.seq > ready).every((s) => messageIds(evs).includes(s.id)), 5000);
    const after = await send('after the burst');
    await es.until((evs) => messageIds(evs).includes(after.id), 5000);
    const seqs = es.events.filter((e) => e.event === 'message').map((e) => Number(e.id));
    const from = seqs[0]!;
    t.same(seqs, [...sent.filter((s) => s.seq >= from).map((s) => s.seq), after.seq], 'a gapless suffix of the burst, then the next one, each once');
  });
});
