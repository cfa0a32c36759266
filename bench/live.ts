/**
 * Live delivery (issue 8): messages/s fanned out over Server-Sent Events to W connected watchers of
 * one group (default 500), and the server's RSS with 1,000 idle live connections (goal < 250 MB).
 * Real TLS with client certificates, one TLS connection per watcher, against a `sigil-server`
 * child process.
 *
 *   make build && node dist/bench/live.js
 *   BENCH_WATCHERS=200 BENCH_IDLE=500 BENCH_MESSAGES=50 node dist/bench/live.js
 *
 * Knobs: BENCH_WATCHERS (500), BENCH_IDLE (1000 connections in all for the RSS figure),
 * BENCH_MESSAGES (100), BENCH_USERS (10), BENCH_PROFILE (p256), BENCH_SERVER_NODE_ARGS (e.g.
 * `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=/tmp/heap`), BENCH_HOLD_MS (0: how long to keep
 * the idle connections open after measuring, to inspect the server, e.g. `kill -USR2 <pid>`).
 */
import https from 'node:https';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProfileName } from '../pki/index.js';
import { tlsFanOutBound } from './lib/bounds.js';
import { composeMessage, createUser, initDataDir, machineNote, officerOf, startServerProc, type LoadUser } from './lib/load.js';

const WATCHERS = Number(process.env.BENCH_WATCHERS ?? 500);
const IDLE = Math.max(Number(process.env.BENCH_IDLE ?? 1000), WATCHERS);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100);
const USERS = Number(process.env.BENCH_USERS ?? 10);
const PROFILE = (process.env.BENCH_PROFILE ?? 'p256') as ProfileName;
const NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const HOLD_MS = Number(process.env.BENCH_HOLD_MS ?? 0);

/** One SSE connection that counts `message` events and the bytes it received. */
interface Watcher {
  messages: number;
  bytes: number;
  ready: Promise<void>;
  close(): void;
}

function watch(u: LoadUser, url: string): Watcher {
  const target = new URL('/v1/events', url);
  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  const w: Watcher = {
    messages: 0,
    bytes: 0,
    ready: new Promise<void>((res, rej) => ((readyResolve = res), (readyReject = rej))),
    close: () => req.destroy(),
  };
  let rest = '';
  const req = https.request(
    {
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      headers: { authorization: `Bearer ${u.client.token}`, accept: 'text/event-stream' },
      ca: u.client.caPem,
      cert: u.certPem,
      key: u.keyPem,
      agent: false,
      minVersion: 'TLSv1.3',
    },
    (res) => {
      if (res.statusCode !== 200) return readyReject(new Error(`events: ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        w.bytes += Buffer.byteLength(d);
        const lines = (rest + d).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) {
          if (l === 'event: message') w.messages++;
          else if (l === 'event: ready') readyResolve();
        }
      });
    },
  );
  req.on('error', (e) => readyReject(e));
  req.end();
  return w;
}

async function openMany(users: LoadUser[], url: string, n: number, offset: number): Promise<Watcher[]> {
  const out: Watcher[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, k) => watch(users[(offset + i + k) % users.length]!, url));
    await Promise.all(batch.map((w) => w.ready));
    out.push(...batch);
  }
  return out;
}

async function main(): Promise<void> {
  console.log(`live: ${WATCHERS} watchers of one group, ${MESSAGES} messages; RSS with ${IDLE} idle live connections`);
  console.log(machineNote());
  // The event-stream cap per account is lifted: hundreds of watchers share BENCH_USERS accounts.
  const { dataDir, init } = await initDataDir({ profile: PROFILE, config: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 }, maxEventStreamsPerUser: 100_000 } });
  let eventBytes = 0;
  let deliveriesPerSecond = 0;
  try {
    const server = await startServerProc(dataDir, {}, 60_000, NODE_ARGS);
    try {
      const officer = await officerOf(server.url, init, 1);
      const users: LoadUser[] = [];
      for (let i = 0; i < USERS; i++) users.push(await createUser(officer, { login: `watch${i}`, clearance: 'secret', profile: PROFILE }));
      const sender = await createUser(officer, { login: 'speaker', clearance: 'secret', profile: PROFILE, maxSockets: 8 });
      const g = await sender.client.request('/v1/groups', { body: { name: 'broadcast', label: 'restricted' } });
      for (const u of users) await sender.client.request('/v1/groups/broadcast/members', { body: { login: u.login } });
      const rss0 = server.rssMb().now;

      let t0 = performance.now();
      const watchers = await openMany(users, server.url, WATCHERS, 0);
      console.log(`connect   ${WATCHERS} live connections in ${((performance.now() - t0) / 1000).toFixed(1)} s; server RSS ${rss0.toFixed(0)} → ${server.rssMb().now.toFixed(0)} MiB`);

      const msgs: Awaited<ReturnType<typeof composeMessage>>[] = [];
      for (let i = 0; i < MESSAGES; i++) msgs.push(await composeMessage(sender, g.body.id, `broadcast ${i}`));
      const cpu0 = server.cpuSeconds();
      const gen0 = process.cpuUsage();
      const bytes0 = watchers.reduce((s, w) => s + w.bytes, 0);
      t0 = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < msgs.length) {
            const m = msgs[next++]!;
            const r = await sender.client.request('/v1/messages', { raw: m.payload });
            if (r.status !== 201) throw new Error(`send: ${r.status} ${JSON.stringify(r.body)}`);
          }
        }),
      );
      const accepted = (performance.now() - t0) / 1000;
      const deadline = Date.now() + 120_000;
      while (watchers.some((w) => w.messages < MESSAGES) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const secs = (performance.now() - t0) / 1000;
      const cpu = server.cpuSeconds() - cpu0;
      const gen = process.cpuUsage(gen0);
      const complete = watchers.filter((w) => w.messages >= MESSAGES).length;
      const delivered = watchers.reduce((s, w) => s + Math.min(w.messages, MESSAGES), 0);
      eventBytes = Math.round((watchers.reduce((s, w) => s + w.bytes, 0) - bytes0) / Math.max(delivered, 1));
      deliveriesPerSecond = delivered / secs;
      console.log(`fan-out   ${(MESSAGES / secs).toFixed(1)} messages/s to ${WATCHERS} watchers = ${(delivered / secs).toFixed(0)} deliveries/s (all sent in ${accepted.toFixed(2)} s, all delivered in ${secs.toFixed(2)} s; ${complete}/${WATCHERS} watchers got every message; server CPU ${cpu.toFixed(2)} s = ${((cpu * 1e6) / Math.max(delivered, 1)).toFixed(0)} µs per delivery, of which the ${MESSAGES} acceptances; load generator CPU ${((gen.user + gen.system) / 1e6).toFixed(2)} s)`);

      const more = await openMany(users, server.url, IDLE - WATCHERS, WATCHERS);
      await new Promise((r) => setTimeout(r, 2000));
      const rss = server.rssMb();
      console.log(`idle      ${IDLE} live connections, 2 s after the fan-out: server RSS ${rss.now.toFixed(0)} MiB (anon ${rss.anon.toFixed(0)}, file ${rss.file.toFixed(0)}; process peak ${rss.peak.toFixed(0)} MiB; ${(((rss.now - rss0) * 1024) / IDLE).toFixed(0)} KiB per connection over the ${rss0.toFixed(0)} MiB before; the message check workers still run)`);
      // Check workers exit after 10 s without work (check-pool.ts): an idle appliance keeps none.
      await new Promise((r) => setTimeout(r, 12_000));
      const still = server.rssMb();
      console.log(`idle      ${IDLE} live connections, 14 s after: server RSS ${still.now.toFixed(0)} MiB (anon ${still.anon.toFixed(0)}, file ${still.file.toFixed(0)}; the check workers have exited)  goal < 250 MB (238 MiB)`);
      if (HOLD_MS > 0) {
        console.log(`hold      ${HOLD_MS} ms with ${IDLE} connections open (server pid ${server.pid})`);
        await new Promise((r) => setTimeout(r, HOLD_MS));
      }
      for (const w of [...watchers, ...more]) w.close();
      for (const u of [...users, sender, officer]) u.client.close();
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dirname(dataDir), { recursive: true, force: true });
  }
  // The bound, once the server has gone: a bare TLS server writing an event of the size the
  // watchers received to as many connections, with no HTTP, SSE or session work around it.
  if (eventBytes <= 0) {
    console.log('bound     not measured: no event reached the watchers');
    return;
  }
  const bound = await tlsFanOutBound(WATCHERS, MESSAGES, eventBytes);
  console.log(`bound     bare node:tls fan-out of a ${eventBytes} B event to ${WATCHERS} connections: ${bound.deliveriesPerSecond.toFixed(0)} deliveries/s (${(bound.deliveriesPerSecond / WATCHERS).toFixed(0)} events/s); live delivery / bound = ${((deliveriesPerSecond / bound.deliveriesPerSecond) * 100).toFixed(0)} %`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
