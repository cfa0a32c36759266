/**
 * Fault (issue 8): `kill -9` of the server while clients send. The server is the real binary in a
 * child process; several clients send signed messages into a group and direct conversations over
 * real TLS (one connection per user one message per request, another six per batch request) and
 * one client streams a file upload; the server is SIGKILLed mid-flight and restarted
 * on the same data dir. Every message that got an acceptance receipt must be there and verify, no
 * half-written file (chunks short of their count, or chunks without a file row) may exist, and the
 * appliance check (server/ops checkAppliance) must pass.
 */
import https from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import sqlite3 from 'sqlite3';
import { verifyDetached, type ProfileName } from '../../pki/index.js';
import { checkAppliance } from '../../server/ops/index.js';
import {
  batchPayload,
  Client,
  composeMessage,
  createUser,
  initDataDir,
  login,
  officerOf,
  sha384b64,
  startServerProc,
  type LoadUser,
  type ServerProc,
  type SignedMessage,
} from '../../bench/lib/load.js';
import { ensureServerBuilt } from '../helpers/server-process.js';
import { tmpDir } from '../helpers/tmp.js';

const PROFILE: ProfileName = 'p256';
const CHEAP_ARGON2 = { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } };

/** Rows of a read-only query on an SQLite file (the server is stopped). */
function query<T>(file: string, sql: string): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      db.all(sql, (e, rows) => {
        db.close();
        if (e) reject(e);
        else resolve(rows as T[]);
      });
    });
  });
}

/**
 * Starts a raw upload of `total` bytes but sends only `sent` of them. `flushed` resolves once those
 * bytes left this process; `done` when the socket dies.
 */
function partialUpload(u: LoadUser, url: string, conv: string, total: number, sent: number): { flushed: Promise<void>; done: Promise<void>; answered(): number } {
  const target = new URL(`/v1/files?conversation=${encodeURIComponent(conv)}`, url);
  let onFlushed!: () => void;
  const flushed = new Promise<void>((r) => (onFlushed = r));
  let answered = 0;
  const done = new Promise<void>((resolve) => {
    const req = https.request({
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method: 'POST',
      headers: { authorization: `Bearer ${u.client.token}`, 'content-type': 'application/octet-stream', 'content-length': String(total) },
      ca: u.client.caPem,
      cert: u.certPem,
      key: u.keyPem,
      agent: false,
    });
    req.on('response', (res) => { answered = res.statusCode ?? 0; res.resume(); });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    const chunk = Buffer.alloc(64 * 1024, 0x42);
    let written = 0;
    const pump = (): void => {
      while (written < sent) {
        written += chunk.length;
        const last = written >= sent;
        if (!req.write(chunk, last ? () => onFlushed() : undefined)) return void req.once('drain', pump);
      }
    };
    pump();
  });
  return { flushed, done, answered: () => answered };
}

t.test('when the server is killed with SIGKILL while clients send then every receipted message survives and verifies, and the vault check passes', async (t) => {
  ensureServerBuilt();
  const dir = tmpDir(t, 'sigil-kill9-');
  const { dataDir, init } = await initDataDir({ profile: PROFILE, config: CHEAP_ARGON2, dataDir: join(dir, 'data') });
  let server: ServerProc = await startServerProc(dataDir);
  t.teardown(async () => void (await server.kill().catch(() => undefined)));

  const officer = await officerOf(server.url, init);
  const users: LoadUser[] = [];
  for (const login of ['alpha', 'bravo', 'charlie']) users.push(await createUser(officer, { login, clearance: 'secret', profile: PROFILE }));
  const g = await users[0]!.client.request('/v1/groups', { body: { name: 'ops-room', label: 'restricted' } });
  t.equal(g.status, 201, 'group created');
  for (const u of users.slice(1)) await users[0]!.client.request('/v1/groups/ops-room/members', { body: { login: u.login } });
  const convs: string[] = [g.body.id];
  for (let i = 0; i < users.length; i++) {
    const r = await users[i]!.client.request('/v1/conversations/direct', { body: { peer: users[(i + 1) % users.length]!.login } });
    convs.push(r.body.id);
  }

  // Two connections per user: 60 pre-signed messages on the first, one per request; 120 on the
  // second, six per request to /v1/messages/batch (bounded: 540 in all, more than get through
  // before the kill, so both kinds are in flight when it comes).
  const senders = users.flatMap((u) => [0, 1].map((k) => ({ u, batch: k === 1, client: k === 0 ? u.client : new Client(server.url, u.client.caPem, u.certPem, u.keyPem), msgs: [] as SignedMessage[] })));
  for (const s of senders.slice(1)) if (s.client !== s.u.client) s.client.token = s.u.client.token;
  for (const [i, s] of senders.entries()) {
    const mine = [convs[0]!, convs[1 + (i >> 1)]!];
    for (let k = 0; k < (s.batch ? 120 : 60); k++) s.msgs.push(await composeMessage(s.u, mine[k % 2]!, `message ${i}/${k} ${'x'.repeat(k * 7)}`));
  }

  // A file upload that is mid-stream when the server dies (2.5 of 8 MiB sent). Its bytes get 1.5 s
  // to reach the vault as chunks before any message is sent, so the kill finds both in flight.
  const upload = partialUpload(users[1]!, server.url, convs[0]!, 8 * 1024 * 1024, Math.floor(2.5 * 1024 * 1024));
  await Promise.race([upload.flushed, new Promise((r) => setTimeout(r, 30_000))]);
  await new Promise((r) => setTimeout(r, 1500));

  const receipted = new Map<string, { sender: LoadUser; seq: number }>();
  let batchReceipts = 0;
  let killed = false;
  let finished = 0;
  const sending = senders.map(async (s) => {
    const step = s.batch ? 6 : 1;
    for (let k = 0; k < s.msgs.length; k += step) {
      if (killed) return;
      const ms = s.msgs.slice(k, k + step);
      try {
        if (!s.batch) {
          const r = await s.client.request('/v1/messages', { raw: ms[0]!.payload, timeoutMs: 30_000 });
          if (r.status === 201) {
            t.equal(r.body.id, ms[0]!.id);
            receipted.set(ms[0]!.id, { sender: s.u, seq: r.body.seq });
          }
          continue;
        }
        const r = await s.client.request('/v1/messages/batch', { raw: batchPayload(ms), timeoutMs: 30_000 });
        if (r.status !== 200) continue;
        (r.body.results as { receipt?: { id: string; seq: number } }[]).forEach((x, i) => {
          if (!x.receipt) return;
          t.equal(x.receipt.id, ms[i]!.id);
          receipted.set(x.receipt.id, { sender: s.u, seq: x.receipt.seq });
          batchReceipts++;
        });
      } catch {
        return; // the connection died with the server
      }
    }
    finished++;
  });

  // Kill once a good number of receipts came back (or after 30 s, whatever we have).
  const deadline = Date.now() + 30_000;
  while (receipted.size < 80 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  const before = await query<{ n: number; chunks: number }>(join(dataDir, 'vault', 'vault.db'), `SELECT count(*) AS n, (SELECT count(*) FROM msg_file_chunks) AS chunks FROM msg_files`);
  t.comment(`just before the kill: ${before[0]!.n} file rows, ${before[0]!.chunks} chunks; ${receipted.size} receipts; ${senders.length - finished} of ${senders.length} senders still sending`);
  const stillSending = senders.length - finished;
  killed = true;
  const code = await server.kill();
  t.not(code, 0, 'the server died of SIGKILL');
  await Promise.all(sending);
  await upload.done;
  t.equal(upload.answered(), 0, 'the upload was still in flight (unanswered) when the server died');
  t.ok(receipted.size > 0, `receipts before the kill: ${receipted.size}`);
  t.ok(batchReceipts > 0, `of them from batches: ${batchReceipts}`);
  t.ok(stillSending > 0, `messages were still being sent when the server died (${stillSending} senders)`);
  for (const s of senders) s.client.close();
  officer.client.close();

  // Restart on the same data dir; every receipted message is there and verifies.
  server = await startServerProc(dataDir);
  const readers = new Map<string, Client>();
  for (const u of users) {
    const c = new Client(server.url, u.client.caPem, u.certPem, u.keyPem);
    c.token = (await login(c, u, u.password)).body.token;
    readers.set(u.login, c);
  }
  let verified = 0;
  const problems: string[] = [];
  for (const [id, { sender, seq }] of receipted) {
    const r = await readers.get(sender.login)!.request(`/v1/messages/${id}`);
    if (r.status !== 200) {
      problems.push(`${id}: ${r.status}`);
      continue;
    }
    const header = JSON.parse(r.body.header) as { body: { sha384: string } };
    const v = await verifyDetached(new Uint8Array(Buffer.from(r.body.signature, 'base64')), new TextEncoder().encode(r.body.header), { expectedSigner: sender.cert });
    const bodyOk = (await sha384b64(new Uint8Array(Buffer.from(r.body.body, 'base64')))) === header.body.sha384;
    if (!v.ok || !bodyOk || r.body.seq !== seq) problems.push(`${id}: verify ${v.ok} body ${bodyOk} seq ${r.body.seq}/${seq}`);
    else verified++;
  }
  t.same(problems, [], 'no receipted message is missing or broken');
  t.equal(verified, receipted.size, `all ${receipted.size} receipted messages verify after the restart`);
  // The server still accepts new messages after the crash.
  const fresh = await composeMessage(users[0]!, convs[0]!, 'after the restart');
  t.equal((await readers.get(users[0]!.login)!.request('/v1/messages', { raw: fresh.payload })).status, 201, 'a new message is accepted after the restart');
  for (const c of readers.values()) c.close();
  t.equal(await server.stop(), 0, 'the restarted server stops cleanly');

  // No half-written file: every file row has exactly its chunks, no chunk lacks its file.
  const vaultDb = join(dataDir, 'vault', 'vault.db');
  const files = await query<{ n: number; chunks: number }>(vaultDb, `SELECT count(*) AS n, (SELECT count(*) FROM msg_file_chunks) AS chunks FROM msg_files`);
  t.comment(`after the restart: ${files[0]!.n} file rows, ${files[0]!.chunks} chunks`);
  if (before[0]!.chunks > 0) t.equal(files[0]!.n, 0, 'the upload that was half-written at the kill is gone after the restart');
  const short = await query<{ id: string }>(
    vaultDb,
    `SELECT f.id FROM msg_files f LEFT JOIN msg_file_chunks c ON c.file = f.id GROUP BY f.id HAVING count(c.idx) <> f.chunk_count`,
  );
  t.same(short, [], 'issue 8 regression (kill -9 mid-upload): no half-written upload is left after the restart — every file row has all its chunks');
  const stray = await query<{ file: string }>(vaultDb, `SELECT DISTINCT file FROM msg_file_chunks WHERE file NOT IN (SELECT id FROM msg_files)`);
  t.same(stray, [], 'no chunk without its file row');

  const report = await checkAppliance({ dataDir, masterKey: { keyFilePath: join(dataDir, 'secrets', 'master.key') } });
  t.ok(report.ok, `appliance check passes: ${JSON.stringify(report.items.filter((i) => i.status === 'fail'))}`);
});
