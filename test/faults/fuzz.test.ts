/**
 * Fault (issue 8): a bounded fuzz run (fast-check) over every route of the API (server/API.md),
 * against the real binary in a child process, over real TLS with logged-in sessions (a staff user
 * and the officer). Bodies are malformed JSON, right fields with wrong types, huge values, bad
 * base64, truncated DER of a real signature, and random bytes. Never a 5xx, every error has the
 * JSON error shape, the process never dies, and a normal request succeeds afterwards.
 *
 * The send stream (`POST /v1/messages/stream`) gets its lines in one body: each answer line must
 * be below 500 and the last must be the end line.
 *
 * `POST /v1/auth/logout` ends a session of its own (a third user's, `leaver`): a fresh one, the
 * last one (perhaps ended already), or none; a logout answered 200 must leave its token refused.
 *
 * Not fuzzed: `GET /v1/events` without a bad parameter (a valid one is a long-lived stream by
 * design).
 *
 * Knobs: SIGIL_FUZZ_RUNS (200 requests), SIGIL_FUZZ_SHOW=1 (list how often each route answered
 * each status, to see what the run reached).
 */
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import type { ProfileName } from '../../pki/index.js';
import {
  composeMessage,
  createUser,
  initDataDir,
  login,
  officerOf,
  signB64,
  startServerProc,
  type LoadResponse,
  type LoadUser,
  type ServerProc,
} from '../../bench/lib/load.js';
import { ensureServerBuilt } from '../helpers/server-process.js';
import { tmpDir } from '../helpers/tmp.js';

const PROFILE: ProfileName = 'p256';
const RUNS = Number(process.env.SIGIL_FUZZ_RUNS ?? 200);

/** Every route of API.md: method, path with `{…}` placeholders. */
const ROUTES: readonly [string, string][] = [
  ['GET', '/v1/health'],
  ['GET', '/v1/ca'],
  ['GET', '/v1/crl'],
  ['GET', '/v1/crl/root'],
  ['POST', '/v1/crl'],
  ['POST', '/v1/auth/challenge'],
  ['POST', '/v1/auth/login'],
  ['POST', '/v1/auth/first-login'],
  ['POST', '/v1/auth/password'],
  ['POST', '/v1/auth/logout'],
  ['GET', '/v1/me'],
  ['GET', '/v1/directory?department={bad}'],
  ['POST', '/v1/users'],
  ['GET', '/v1/users'],
  ['GET', '/v1/users/{login}'],
  ['POST', '/v1/users/{login}/disable'],
  ['POST', '/v1/users/{login}/enable'],
  ['POST', '/v1/users/{login}/unlock'],
  ['POST', '/v1/users/{login}/reset'],
  ['POST', '/v1/users/{login}/clearance'],
  ['POST', '/v1/users/{login}/name'],
  ['DELETE', '/v1/users/{login}'],
  ['POST', '/v1/users/{login}/certificates'],
  ['POST', '/v1/users/{login}/certificates/p12'],
  ['GET', '/v1/users/{login}/certificates'],
  ['POST', '/v1/certificates/{serial}/revoke'],
  ['POST', '/v1/conversations/direct'],
  ['GET', '/v1/conversations'],
  ['GET', '/v1/conversations/{conv}'],
  ['GET', '/v1/conversations/{conv}/messages?before={q}&limit={q}'],
  ['POST', '/v1/conversations/{conv}/read'],
  ['POST', '/v1/conversations/{conv}/mute'],
  ['DELETE', '/v1/conversations/{conv}'],
  ['POST', '/v1/files?conversation={conv}'],
  ['GET', '/v1/files/{id}'],
  ['DELETE', '/v1/files/{id}'],
  ['POST', '/v1/messages'],
  ['POST', '/v1/messages/batch'],
  ['POST', '/v1/messages/stream'],
  ['GET', '/v1/messages/{id}'],
  ['GET', '/v1/messages/{id}/receipts'],
  ['DELETE', '/v1/messages/{id}'],
  ['DELETE', '/v1/users/{login}/correspondence'],
  ['GET', '/v1/events?lastEventId={bad}'],
  ['POST', '/v1/groups'],
  ['GET', '/v1/groups'],
  ['GET', '/v1/groups/{group}'],
  ['POST', '/v1/groups/{group}/members'],
  ['DELETE', '/v1/groups/{group}/members/{login}'],
  ['DELETE', '/v1/groups/{group}'],
  ['GET', '/v1/audit/checkpoint'],
  ['GET', '/v1/audit/checkpoints?after={q}&limit={q}'],
  ['GET', '/v1/audit/entries?from={q}&to={q}'],
  ['GET', '/v1/audit/events?type={bad}&since={q}&user={login}&after={q}&limit={q}'],
  ['GET', '/v1/audit/proofs/inclusion?index={q}&size={q}'],
  ['GET', '/v1/audit/proofs/consistency?from={q}&to={q}'],
  ['POST', '/v1/audit/room-access'],
];

/** Field names the schemas know, so "right field, wrong type" reaches past the first check. */
const FIELDS = [
  'login', 'password', 'nonce', 'signature', 'newPassword', 'receipt', 'currentPassword', 'fullName', 'department',
  'clearance', 'role', 'csr', 'reason', 'peer', 'upTo', 'muted', 'statement', 'header', 'body', 'name', 'label',
  'retentionDays', 'id', 'target', 'messages', 'pass', 'person', 'direction', 'at', 'rank',
];

t.test('when every route gets a bounded run of hostile input then nothing answers 5xx, the server stays up and answers normally', async (t) => {
  ensureServerBuilt();
  const dir = tmpDir(t, 'sigil-fuzz-');
  const { dataDir, init } = await initDataDir({
    profile: PROFILE,
    config: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } },
    dataDir: join(dir, 'data'),
  });
  const server: ServerProc = await startServerProc(dataDir);
  t.teardown(async () => void (await server.kill().catch(() => undefined)));
  let died: number | null | undefined;
  void server.exited.then((c) => (died = c));

  const officer = await officerOf(server.url, init, 1);
  const fuzzer = await createUser(officer, { login: 'fuzzer', clearance: 'secret', profile: PROFILE });
  const peer = await createUser(officer, { login: 'witness', clearance: 'secret', profile: PROFILE });
  // The officer's fuzzed account operations aim at this one (and unknown logins), never at the witness.
  const target = await createUser(officer, { login: 'target', clearance: 'secret', profile: PROFILE });
  target.client.close();
  // Whose sessions the fuzzed logouts end: never the fuzzer's or the officer's, whose later runs would all stop at 401.
  const leaver = await createUser(officer, { login: 'leaver', clearance: 'secret', profile: PROFILE });
  const g = await fuzzer.client.request('/v1/groups', { body: { name: 'fuzz-room', label: 'restricted' } });
  t.equal(g.status, 201);
  const direct = await fuzzer.client.request('/v1/conversations/direct', { body: { peer: peer.login } });
  const msg = await composeMessage(fuzzer, g.body.id, 'a real message to aim at');
  const sent = await fuzzer.client.request('/v1/messages', { raw: msg.payload });
  t.equal(sent.status, 201);
  const realSig = await signB64(fuzzer, 'anything');
  const serial = (await officer.client.request(`/v1/users/${fuzzer.login}/certificates`)).body.certificates?.[0]?.serial ?? '01';

  const ids = {
    login: [fuzzer.login, target.login, 'nobody', '..', 'A'.repeat(300), '%00', '%2e%2e%2f'],
    conv: [g.body.id as string, direct.body.id as string, 'x', 'A'.repeat(500), '%ff%fe'],
    id: [msg.id, 'zzzz', 'A'.repeat(22), '%00'],
    group: ['fuzz-room', 'none', 'B'.repeat(400), '%C0%AF'],
    serial: [serial, 'zz', '0'.repeat(200)],
    q: ['-1', '0', '1e309', 'NaN', '99999999999999999999', 'abc', ''],
    bad: ['abc', '1'.repeat(400), '1e999', '%ff'],
  };

  const base64ish = fc.oneof(
    fc.string(),
    fc.constant('!!!not base64!!!'),
    fc.constant('QUJD==='),
    fc.nat({ max: realSig.length }).map((n) => realSig.slice(0, n)), // truncated DER
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64')), // random DER
  );
  const value = fc.oneof(
    fc.anything({ maxDepth: 2 }),
    base64ish,
    fc.constant('h'.repeat(70_000)), // over the 64 KiB default body limit once serialised
    fc.integer(),
    fc.double(),
    fc.constantFrom(null, true, [], {}, -1, 2 ** 53, '', 'secret', 'top-secret'),
  );
  // Right shape, hostile content: past the schema, into the per-message checks.
  const realHeader = (JSON.parse(msg.payload) as { header: string }).header;
  const wellShaped = fc.record({ header: fc.oneof(fc.constant(realHeader), fc.string({ minLength: 1 })), signature: base64ish, body: base64ish });
  const fields = fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 6 });
  const body = fc.oneof(
    fc.record({ kind: fc.constant('json' as const), v: fields }),
    // A batch whose items are hostile in their own ways (POST /v1/messages/batch; elsewhere an unknown field).
    fc.record({ kind: fc.constant('json' as const), v: fc.record({ messages: fc.array(fc.oneof(fields, value, wellShaped), { maxLength: 70 }) }) }),
    fc.record({ kind: fc.constant('json' as const), v: fc.jsonValue({ maxDepth: 3 }) }),
    fc.record({ kind: fc.constant('raw' as const), v: fc.string({ maxLength: 200 }) }), // malformed JSON
    // NDJSON lines, hostile each in its own way (POST /v1/messages/stream; elsewhere malformed JSON).
    fc.record({
      kind: fc.constant('raw' as const),
      v: fc
        .array(fc.oneof(fields, value, wellShaped), { maxLength: 20 })
        .chain((items) => fc.constantFrom('\n', '\r\n', '\n\n').map((sep) => items.map((i) => JSON.stringify(i) ?? 'null').join(sep))),
    }),
    fc.record({ kind: fc.constant('bytes' as const), v: fc.uint8Array({ maxLength: 2048 }) }),
    fc.constant({ kind: 'none' as const, v: undefined }),
  );
  const pick = (k: keyof typeof ids) => fc.constantFrom(...ids[k]);
  const requestTo = (routes: readonly (readonly [string, string])[]) => fc.record({
    route: fc.constantFrom(...routes),
    as: fc.constantFrom('fuzzer', 'officer', 'anonymous'),
    login: pick('login'),
    conv: pick('conv'),
    id: pick('id'),
    group: pick('group'),
    serial: pick('serial'),
    q: pick('q'),
    bad: pick('bad'),
    contentType: fc.constantFrom('application/json', 'application/octet-stream', 'text/plain', 'application/json; charset=utf-7'),
    body,
  });

  const who: Record<string, LoadUser> = { fuzzer, officer };
  const seen = new Map<string, number>();
  const bad: string[] = [];
  let retried = 0;
  type FuzzRequest = ReturnType<typeof requestTo> extends fc.Arbitrary<infer R> ? R : never;
  const check = async (r: FuzzRequest): Promise<boolean> => {
    const [method, template] = r.route;
    // The officer's account changes go to the target instead of the fuzzer: one that landed (a
    // disable, a reset, a clearance) would end the fuzzer's session, and every later run with it.
    const values: Record<string, unknown> = r.as === 'officer' && method !== 'GET' && r.login === fuzzer.login ? { ...r, login: target.login } : r;
    const path = template.replace(/\{(\w+)\}/g, (_, k: string) => encodeURIComponent(String(values[k])).replace(/%25/g, '%'));
    const logout = template === '/v1/auth/logout';
    const u = logout ? leaver : (who[r.as] ?? fuzzer);
    // A logout as 'fuzzer' ends a fresh session of the leaver's; as 'officer', the leaver's last one.
    if (logout && r.as === 'fuzzer') leaver.client.token = (await login(leaver.client, leaver, leaver.password)).body.token as string;
    const raw =
      r.body.kind === 'json' ? JSON.stringify(r.body.v) ?? 'null' : r.body.kind === 'raw' ? r.body.v : r.body.kind === 'bytes' ? r.body.v : undefined;
    const send = (fresh: boolean): Promise<LoadResponse> =>
      u.client.request(path, {
        method,
        ...(raw !== undefined && method !== 'GET' ? { raw, headers: { 'content-type': r.contentType } } : {}),
        token: r.as === 'anonymous' ? '' : u.client.token,
        timeoutMs: 30_000,
        fresh,
      });
    let res: LoadResponse;
    try {
      res = await send(false);
    } catch {
      // A keep-alive socket the server closed after its previous answer (e.g. a 413 that did
      // not read the body) races with reuse; the same request again on a new connection must
      // get an answer.
      retried++;
      try {
        res = await send(true);
      } catch (err) {
        bad.push(`${method} ${path}: no answer on a fresh connection either (${(err as Error).message})`);
        return false;
      }
    }
    const key = `${method} ${template} → ${res.status}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    if (res.status >= 500) {
      bad.push(`${method} ${path}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      return false;
    }
    if (res.status === 200 && template === '/v1/messages/stream') {
      // One answer per line, then the end line; no line answered 5xx.
      const lines = String(res.body).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { error?: { status?: number }; end?: unknown });
      if (!lines.at(-1)?.end || lines.some((l) => (l.error?.status ?? 0) >= 500)) {
        bad.push(`${method} ${path}: a stream answered ${String(res.body).slice(0, 300)}`);
        return false;
      }
    }
    if (logout && res.status === 200) {
      const after = await leaver.client.request('/v1/me');
      if (after.status !== 401) {
        bad.push(`${method} ${path}: answered 200, and the session it ended still answers ${after.status}`);
        return false;
      }
    }
    if (res.status >= 400) {
      const e = (res.body as { error?: { code?: unknown; message?: unknown; requestId?: unknown } })?.error;
      if (typeof e?.code !== 'string' || typeof e.message !== 'string' || typeof e.requestId !== 'string') {
        bad.push(`${method} ${path}: ${res.status} without the error shape: ${JSON.stringify(res.body).slice(0, 200)}`);
        return false;
      }
    }
    return true;
  };
  const seed = Number(process.env.SIGIL_FUZZ_SEED ?? 8);
  const run = (routes: readonly (readonly [string, string])[], numRuns: number) =>
    fc
      .assert(fc.asyncProperty(requestTo(routes), check), { numRuns, seed, endOnFailure: true })
      .catch((err: unknown) => t.fail(`fuzz found a failure: ${bad.join(' | ')} — ${String(err).slice(0, 1500)}`));
  await run(ROUTES, RUNS);
  // Logout is one route in 57: a run of its own, so that sessions are surely ended and refused.
  await run(ROUTES.filter(([, p]) => p === '/v1/auth/logout'), Math.max(10, Math.round(RUNS / 10)));

  t.same(bad, [], 'no 5xx, no missing error shape, no unanswered request');
  t.comment(`${seen.size} route/status pairs; ${retried} requests retried on a fresh connection after a closed keep-alive socket`);
  if (process.env.SIGIL_FUZZ_SHOW) t.comment([...seen].map(([k, n]) => `${k}: ${n}`).join("\n"));
  t.equal(died, undefined, 'the server process is still running');
  const statuses = [...seen.keys()].map((k) => k.split(' → ')[1]);
  t.ok(statuses.some((s) => s === '400') && statuses.some((s) => s === '401' || s === '403') && statuses.some((s) => s === '404'), 'the run reached validation, authorisation and lookups');

  // Normal service afterwards: a fresh message from the witness is accepted and readable.
  const after = await composeMessage(peer, direct.body.id, 'still here');
  const posted = await peer.client.request('/v1/messages', { raw: after.payload });
  t.equal(posted.status, 201, 'a normal message is accepted after the fuzz run');
  t.equal((await peer.client.request(`/v1/messages/${after.id}`)).status, 200, 'and read back');
  t.equal((await peer.client.request('/v1/health')).status, 200);
  t.equal((await fuzzer.client.request('/v1/me')).status, 200, 'the fuzzer’s session was never ended by a fuzzed logout');
  t.ok(seen.has('POST /v1/auth/logout → 200') && seen.has('POST /v1/auth/logout → 401'), 'logouts that ended a session, and some refused');
  officer.client.close();
  fuzzer.client.close();
  peer.client.close();
  leaver.client.close();
});
