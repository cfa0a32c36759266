/**
 * The event stream against an appliance that vanishes without closing anything (power loss, cut
 * cable): a TCP relay between `followEvents` and a real appliance stops passing bytes, both ways,
 * without FIN or RST. The client must take the silence as a dead connection, reconnect with
 * Last-Event-ID once traffic flows again, and miss nothing; a handler slower than the idle limit
 * is not a dead peer.
 */
import net from 'node:net';
import t from 'tap';
import { followEvents, type SseEvent } from '../../../client-cli/messaging/events.js';
import type { Endpoint } from '../../../client-cli/messaging/transport.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { until } from '../../helpers/until.js';

const KEEP_ALIVE_MS = 300;
const IDLE_MS = 3 * KEEP_ALIVE_MS;

const h = await httpHarness(t, { keepAliveMs: KEEP_ALIVE_MS });
const alice = await h.app.createStaff({ login: 'dp-alice', clearance: 'secret' });
const bob = await h.app.createStaff({ login: 'dp-bob', clearance: 'secret' });
const A = h.as(alice);
const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };

async function send(text: string): Promise<number> {
  const m = await h.compose(alice, conv.id, text);
  const r = await A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.seq as number;
}

/**
 * A relay to the appliance. While `silent`, every byte is dropped, on the connections open then and
 * on new ones, and nothing is closed: from either end the other simply stops talking.
 */
async function relay(t: { teardown(fn: () => void): void }): Promise<{ url: string; silent: boolean }> {
  const up = new URL(h.app.url);
  const state = { url: '', silent: false };
  const conns = new Set<net.Socket>();
  const srv = net.createServer((c) => {
    const s = net.connect(Number(up.port), up.hostname);
    // A connection that saw silence stays dead: its dropped bytes broke its TLS stream for good.
    let dead = state.silent;
    const pass = (to: net.Socket) => (d: Buffer) => {
      if (state.silent) dead = true;
      if (!dead) to.write(d);
    };
    c.on('data', pass(s));
    s.on('data', pass(c));
    for (const [a, b] of [[c, s], [s, c]] as const) {
      conns.add(a);
      a.on('error', () => undefined);
      a.on('close', () => {
        conns.delete(a);
        if (!dead) b.destroy();
      });
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const c of conns) c.destroy();
    srv.close();
  });
  state.url = `https://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  return state;
}

t.test('when the appliance falls silent without closing then watch reconnects within the idle limit and misses nothing', async (t) => {
  const r = await relay(t);
  const ep: Endpoint = { baseUrl: r.url, caPem: h.app.caPem, certPem: bob.certPem, keyPem: bob.keyPem, token: bob.token };
  const events: SseEvent[] = [];
  const reconnects: { at: number; last: number | undefined; why: string }[] = [];
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const done = followEvents(ep, {
    lastEventId: 0,
    signal: ac.signal,
    idleMs: IDLE_MS,
    backoffMs: () => 50,
    onEvent: (e) => void events.push(e),
    onReconnect: (_n, last, why) => void reconnects.push({ at: Date.now(), last, why }),
  });
  const seen = (): string => JSON.stringify({ events: events.map((e) => [e.event, e.id]), reconnects });
  const seqs = (): number[] => events.filter((e) => e.event === 'message').map((e) => Number(e.id));
  const readies = (): number => events.filter((e) => e.event === 'ready').length;

  await until(() => readies() === 1, 10_000, seen);
  const s1 = await send('before the silence');
  await until(() => seqs().includes(s1), 10_000, seen);

  r.silent = true; // the appliance "loses power": nothing more arrives, no FIN, no RST
  const silentAt = Date.now();
  const s2 = await send('sent while bob cannot hear');
  // The stream is declared dead within the idle limit (plus scheduling slack), not never.
  await until(() => reconnects.length >= 1, IDLE_MS + 2_000, seen);
  t.ok(reconnects[0]!.at - silentAt >= IDLE_MS - 50, 'not before the idle limit');
  t.match(reconnects[0], { last: s1, why: /nothing arrived/ }, 'resumes from the last message seen');
  // The reconnect meets the same silence (the relay accepts TCP, then nothing): that attempt is
  // given up after the idle limit too, instead of waiting forever for the TLS handshake.
  await until(() => reconnects.length >= 2, IDLE_MS + 2_000, seen);

  r.silent = false; // back: the next reconnect gets through, with Last-Event-ID = s1
  await until(() => readies() === 2 && seqs().includes(s2), 10_000, seen);
  const s3 = await send('live again');
  await until(() => seqs().includes(s3), 10_000, seen);
  t.same(seqs(), [s1, s2, s3], 'nothing lost, nothing twice');

  ac.abort();
  await done;
});

t.test('when the event handler takes longer than the idle limit then the stream is not taken for dead', async (t) => {
  const r = await relay(t);
  const ep: Endpoint = { baseUrl: r.url, caPem: h.app.caPem, certPem: bob.certPem, keyPem: bob.keyPem, token: bob.token };
  const events: SseEvent[] = [];
  const reconnects: string[] = [];
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const last = await send('a backlog of one');
  const done = followEvents(ep, {
    lastEventId: last - 1,
    signal: ac.signal,
    idleMs: IDLE_MS,
    // Slow on the replayed message (a long verification, say), while keep-alives queue behind it.
    onEvent: async (e) => {
      if (e.event === 'message') await new Promise((res) => setTimeout(res, 2 * IDLE_MS));
      events.push(e);
    },
    onReconnect: (_n, _last, why) => void reconnects.push(why),
  });
  await until(() => events.some((e) => e.event === 'ready'), 10_000, () => JSON.stringify({ events, reconnects }));
  await new Promise((res) => setTimeout(res, IDLE_MS / 2));
  t.same(reconnects, [], 'no reconnect');
  t.same(events.map((e) => [e.event, e.id]), [['message', String(last)], ['ready', undefined]]);
  ac.abort();
  await done;
});
