/**
 * Fault (issue 8): one account holding long-lived requests does not starve the others, and
 * requests the app never sees still get the error model's JSON. Against the real binary in a
 * child process, with small caps in its config.json: event streams and send streams per account
 * (429 TOO_MANY_STREAMS past the cap, a slot back once a stream closes), `HEAD /v1/events`
 * (answered, not a second writeHead and a stack trace), malformed requests (JSON 400/431), and
 * the listener's connection cap.
 */
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import t from 'tap';
import type { ProfileName } from '../../pki/index.js';
import { createUser, initDataDir, officerOf, startServerProc, type LoadUser, type ServerProc } from '../../bench/lib/load.js';
import { ensureServerBuilt } from '../helpers/server-process.js';
import { tmpDir } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';

const PROFILE: ProfileName = 'p256';
const CAPS = { maxEventStreamsPerUser: 3, maxSendStreamsPerUser: 2, maxConnections: 48 };

interface Raw {
  /** Everything read so far. */
  text(): string;
  /** Resolves once the answer's head (and the start of its body) arrived. */
  head(): Promise<{ status: number; text: string }>;
  closed(): boolean;
  close(): void;
}

/** One request written by hand over TLS with `u`'s certificate; the socket stays open. */
function raw(u: LoadUser, url: URL, request: string): Raw {
  let got = '';
  let closed = false;
  const sock = tls.connect({ host: url.hostname, port: Number(url.port), ca: u.client.caPem, cert: u.certPem, key: u.keyPem, minVersion: 'TLSv1.3' }, () =>
    sock.write(request),
  );
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => (got += d));
  sock.on('error', () => undefined);
  sock.on('close', () => (closed = true));
  return {
    text: () => got,
    async head() {
      await until(() => /\r\n\r\n/.test(got) || closed, 10_000, `an answer to ${request.split('\r\n')[0]}`);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0);
      return { status, text: got };
    },
    closed: () => closed,
    close: () => sock.destroy(),
  };
}

function get(u: LoadUser, url: URL, path: string, method = 'GET'): Raw {
  return raw(u, url, `${method} ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${u.client.token}\r\nAccept: text/event-stream\r\n\r\n`);
}

/** A send stream opened and left open: the head of a chunked POST, no line yet. */
function sendStream(u: LoadUser, url: URL): Raw {
  return raw(
    u,
    url,
    `POST /v1/messages/stream HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${u.client.token}\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n`,
  );
}

/** The JSON error body of an answer read whole. */
function errorOf(text: string): { code?: string; message?: string; requestId?: string } {
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  const json = body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1);
  return (JSON.parse(json) as { error: { code?: string } }).error;
}

t.test('when one account hogs streams and connections then it is capped and the others are served', async (t) => {
  ensureServerBuilt();
  const dir = tmpDir(t, 'sigil-hogs-');
  const { dataDir, init } = await initDataDir({
    profile: PROFILE,
    config: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 }, ...CAPS },
    dataDir: join(dir, 'data'),
  });
  const server: ServerProc = await startServerProc(dataDir);
  t.teardown(async () => void (await server.kill().catch(() => undefined)));
  const officer = await officerOf(server.url, init, 1);
  const hog = await createUser(officer, { login: 'hog', clearance: 'secret', profile: PROFILE });
  const other = await createUser(officer, { login: 'other', clearance: 'secret', profile: PROFILE });
  const url = new URL(server.url);
  const open: Raw[] = [];
  t.teardown(() => open.forEach((r) => r.close()));

  await t.test('event streams: the cap, a JSON 429 past it, a slot back once one closes', async (t) => {
    const streams = Array.from({ length: CAPS.maxEventStreamsPerUser }, () => get(hog, url, '/v1/events'));
    open.push(...streams);
    for (const s of streams) t.equal((await s.head()).status, 200);
    const over = get(hog, url, '/v1/events');
    open.push(over);
    const refused = await over.head();
    t.equal(refused.status, 429);
    await until(() => over.text().includes('}'), 5000, 'the error body');
    t.match(errorOf(over.text()), { code: 'TOO_MANY_STREAMS', message: /hog already has 3 live event streams open/ });
    const theirs = get(other, url, '/v1/events');
    open.push(theirs);
    t.equal((await theirs.head()).status, 200, 'another account still gets its stream');
    streams[0]!.close();
    let again: Raw | undefined;
    await until(
      async () => {
        again?.close();
        again = get(hog, url, '/v1/events');
        open.push(again);
        return (await again.head()).status === 200;
      },
      10_000,
      'the slot of the closed stream back',
    );
    t.pass('a closed stream gives its slot back');
  });

  await t.test('send streams: the cap and a JSON 429 past it', async (t) => {
    const streams = Array.from({ length: CAPS.maxSendStreamsPerUser }, () => sendStream(hog, url));
    open.push(...streams);
    for (const s of streams) t.equal((await s.head()).status, 200);
    const over = sendStream(hog, url);
    open.push(over);
    t.equal((await over.head()).status, 429);
    await until(() => over.text().includes('}'), 5000, 'the error body');
    t.match(errorOf(over.text()), { code: 'TOO_MANY_STREAMS', message: /2 send streams/ });
    const theirs = sendStream(other, url);
    open.push(theirs);
    t.equal((await theirs.head()).status, 200, 'another account still gets its stream');
  });

  await t.test('HEAD /v1/events is answered once, without a stack trace in the log', async (t) => {
    const h = get(other, url, '/v1/events', 'HEAD');
    open.push(h);
    const a = await h.head();
    t.equal(a.status, 200);
    t.match(a.text, /content-type: text\/event-stream/i);
    t.notMatch(server.stderr(), /ERR_HTTP_HEADERS_SENT|\n\s+at /, 'no stack trace on stderr');
  });

  await t.test('requests the app never sees get the JSON error body', async (t) => {
    const cases: [string, string, number, string][] = [
      ['OPTIONS *', `OPTIONS * HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`, 400, 'BAD_REQUEST'],
      ['no Host', `GET /v1/health HTTP/1.1\r\n\r\n`, 400, 'BAD_REQUEST'],
      ['a malformed header line', `GET /v1/health HTTP/1.1\r\nHost: ${url.host}\r\nno colon here\r\n\r\n`, 400, 'BAD_REQUEST'],
      ['headers too large', `GET /v1/health HTTP/1.1\r\nHost: ${url.host}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    ];
    for (const [what, request, status, code] of cases) {
      const r = raw(other, url, request);
      open.push(r);
      const a = await r.head();
      t.equal(a.status, status, `${what}: ${JSON.stringify(a.text.slice(0, 300))}`);
      await until(() => r.text().includes('}') || r.closed(), 5000, `${what}: the body`);
      t.match(errorOf(r.text()), { code, requestId: /^[\w-]{12}$/ }, what);
    }
    t.notMatch(server.stderr(), /\n\s+at /, 'no stack trace on stderr');
  });

  await t.test('the listener closes connections past its cap, and serves again once they go', async (t) => {
    for (const r of open) r.close();
    const socks = Array.from({ length: CAPS.maxConnections + 12 }, () => {
      const s = net.connect({ host: url.hostname, port: Number(url.port) });
      const st = { closed: false, s };
      s.on('error', () => undefined);
      s.on('close', () => (st.closed = true));
      return st;
    });
    t.teardown(() => socks.forEach((x) => x.s.destroy()));
    await until(() => socks.filter((x) => x.closed).length >= 12, 5000, 'connections past the cap closed');
    t.pass('connections past the cap were closed at once');
    socks.forEach((x) => x.s.destroy());
    let status = 0;
    await until(
      async () => {
        status = (await other.client.request('/v1/me', { fresh: true }).catch(() => ({ status: 0 }))).status;
        return status === 200;
      },
      10_000,
      'a normal request served again',
    );
    t.equal(status, 200);
  });
});
