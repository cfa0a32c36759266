/**
 * bench/lib/raw-client.ts, the messages bench's lean HTTP/1.1 client: it must read a real
 * appliance's answers as node:https would (status and JSON body, several requests on one
 * keep-alive connection), and fail loudly, never guess, on what it does not read — chunked
 * framing, a connection closed mid-answer, bytes beyond the answer. Benches never assert, so a
 * client that miscounted answers would only show as a strange figure.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { RawConnection, requestBytes } from '../../bench/lib/raw-client.js';
import { httpHarness } from '../server/messaging/http-harness.js';
import { tmpDir } from '../helpers/tmp.js';

t.test('when the raw client talks to a real appliance then it reads every answer on one keep-alive connection', async (t) => {
  const h = await httpHarness(t);
  const alice = await h.app.createStaff({ login: 'raw-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'raw-bob', clearance: 'secret' });
  const conv = (await h.as(alice)('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  const url = new URL(h.app.url);
  const conn = await RawConnection.open(url, { ca: h.app.caPem, cert: alice.certPem, key: alice.keyPem });
  t.teardown(() => conn.close());
  const post = (body: string): Buffer => requestBytes(url, '/v1/messages/batch', alice.token, Buffer.from(body));
  // A body the batch route refuses (400 JSON), then signed batches on the same connection.
  const bad = await conn.send(post('{"messages":'));
  t.equal(bad.status, 400);
  t.equal((bad.body as { error: { code: string } }).error.code, 'BAD_REQUEST');
  for (let i = 0; i < 3; i++) {
    const messages = [await h.compose(alice, conv, `first of ${i}`), await h.compose(alice, conv, `second of ${i}`)];
    const r = await conn.send(post(JSON.stringify({ messages: messages.map(({ header, signature, body }) => ({ header, signature, body })) })));
    t.equal(r.status, 200, `batch ${i} on the same connection`);
    const results = (r.body as { results: { receipt?: { id: string } }[] }).results;
    t.same(results.map((x) => x.receipt?.id), messages.map((m) => m.id), 'a receipt for each message, in order');
    t.ok(r.ms > 0);
  }
  // Without the session's token the appliance answers 401 JSON, read like any other.
  const anon = await conn.send(requestBytes(url, '/v1/messages/batch', 'not-a-token', Buffer.from('{}')));
  t.equal(anon.status, 401);
});

/** A bare TLS server (self-signed, also the client's certificate) that answers every request with `answer`. */
async function bareServer(t: Test, answer: (socket: tls.TLSSocket) => void): Promise<{ url: URL; ca: string; cert: string; key: string }> {
  const dir = tmpDir(t, 'sigil-raw-client-');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=raw-client',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
  const key = readFileSync(join(dir, 'k.pem'), 'utf8');
  const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
  const server = tls.createServer({ key, cert, ca: cert, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s) => {
    s.on('error', () => {});
    s.once('data', () => answer(s));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.teardown(() => new Promise<void>((res) => server.close(() => res())));
  const port = (server.address() as { port: number }).port;
  return { url: new URL(`https://127.0.0.1:${port}`), ca: cert, cert, key };
}

async function refusal(t: Test, answer: (socket: tls.TLSSocket) => void): Promise<Error> {
  const s = await bareServer(t, answer);
  const conn = await RawConnection.open(s.url, s);
  t.teardown(() => conn.close());
  return conn.send(requestBytes(s.url, '/x', 'token', Buffer.from('{}')), 5_000).then(
    () => t.fail('answered') as never,
    (e: Error) => e,
  );
}

t.test('when an answer comes in pieces then it is put together before it is read', async (t) => {
  const s = await bareServer(t, (sock) => {
    const body = '{"results":[1,2,3]}';
    const all = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    let at = 0;
    const next = (): void => {
      sock.write(all.slice(at, at + 7));
      at += 7;
      if (at < all.length) setTimeout(next, 2);
    };
    next();
  });
  const conn = await RawConnection.open(s.url, s);
  t.teardown(() => conn.close());
  const r = await conn.send(requestBytes(s.url, '/x', 'token', Buffer.from('{}')));
  t.equal(r.status, 200);
  t.same(r.body, { results: [1, 2, 3] });
});

t.test('when an answer is chunked then the request fails and says so', async (t) => {
  const e = await refusal(t, (sock) => sock.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'));
  t.match(e.message, /does not read/);
});

t.test('when the server closes the connection mid-answer then the request fails', async (t) => {
  const e = await refusal(t, (sock) => sock.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"res'));
  t.match(e.message, /closed the connection/);
});

t.test('when bytes come beyond the answer then the request fails rather than miscounting', async (t) => {
  const e = await refusal(t, (sock) => sock.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n'));
  t.match(e.message, /beyond the answer/);
});

t.test('when no answer comes then the request times out', async (t) => {
  const e = await refusal(t, () => {});
  t.match(e.message, /no answer within/);
});
