/**
 * The CLI's HTTPS client against real TLS 1.3 sockets on 127.0.0.1: pinned-CA server checks,
 * client certificates, the server error envelope, and the transport failure codes.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { z } from 'zod';
import { exportPrivateKeyPem, generateKeyPair } from '../../pki/index.js';
import { HttpClient } from '../../client-cli/http.js';
import { exitCodeFor } from '../../client-cli/exit-codes.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';

const Ok = z.object({ ok: z.literal(true), auth: z.string().optional(), body: z.unknown().optional() });

const ca = await makeTestCa('p256');
const other = await makeTestCa('p256');
const serverTls = await ca.tlsServer();
const staff = await ca.staff('alee');
const stranger = await other.staff('mallory');
const caPem = ca.root.cert.pem;
const chainPem = ca.issuing.cert.pem;

async function startServer(tls = serverTls): Promise<{ server: Server; url: string }> {
  const server = createServer(
    {
      key: await exportPrivateKeyPem(tls.key),
      cert: tls.cert.pem + chainPem,
      ca: [caPem, chainPem],
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const send = (status: number, text: string) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(text);
        };
        if (req.url === '/ok') return send(200, JSON.stringify({ ok: true, auth: req.headers.authorization, body: body ? JSON.parse(body) : undefined }));
        if (req.url === '/refused') return send(401, JSON.stringify({ error: { code: 'AUTH_FAILED', message: 'login failed', requestId: 'r-1' } }));
        if (req.url === '/html') return send(200, '<html>not json</html>');
        if (req.url === '/shape') return send(200, JSON.stringify({ ok: 'yes' }));
        if (req.url === '/bare-error') return send(500, JSON.stringify({ oops: true }));
        if (req.url === '/trickle' || req.url === '/endless') {
          // Alive enough for the silence timeout, never done: one byte (or 64 KiB) every 50 ms.
          res.writeHead(200, { 'content-type': 'application/json' });
          const piece = req.url === '/trickle' ? ' ' : ' '.repeat(64 * 1024);
          const timer = setInterval(() => res.write(piece), 50);
          res.on('close', () => clearInterval(timer));
          res.on('error', () => clearInterval(timer));
          return;
        }
        send(404, JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no route' } }));
      });
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const { url } = await startServer();
const staffKeyPem = await exportPrivateKeyPem(staff.key);

function client(over: Partial<ConstructorParameters<typeof HttpClient>[0]> = {}): HttpClient {
  return new HttpClient({ baseUrl: url, caPem, certPem: staff.cert.pem + chainPem, keyPem: staffKeyPem, ...over });
}

t.test('when the server answers 2xx JSON then the parsed body comes back with the bearer token sent', async (t) => {
  const r = await client({ token: 'tok-1' }).post('/ok', { a: 1 }, Ok);
  t.same(r, { ok: true, auth: 'Bearer tok-1', body: { a: 1 } });
});

t.test('when the server answers the error envelope then ServerError keeps its code and exit 4 follows for AUTH_FAILED', async (t) => {
  const err = await client().get('/refused', Ok).catch((e: unknown) => e);
  t.match(err, { name: 'ServerError', code: 'AUTH_FAILED', status: 401, requestId: 'r-1', message: 'login failed' });
  t.equal(exitCodeFor(err), 4);
});

t.test('when the server answers something that is not the contract then BAD_RESPONSE', async (t) => {
  for (const path of ['/html', '/shape', '/bare-error']) {
    const err = await client().get(path, Ok).catch((e: unknown) => e);
    t.match(err, { code: 'BAD_RESPONSE' }, path);
    t.equal(exitCodeFor(err), 1);
  }
});

t.test('when the server certificate does not chain to the pinned CA then SERVER_UNTRUSTED, exit 3', async (t) => {
  const err = await client({ caPem: other.root.cert.pem }).get('/ok', Ok).catch((e: unknown) => e);
  t.match(err, { code: 'SERVER_UNTRUSTED' });
  t.equal(exitCodeFor(err), 3);
});

t.test('when the URL host is not named by the server certificate then SERVER_UNTRUSTED', async (t) => {
  const keys = await generateKeyPair('p256');
  const cert = await ca.issuer.issueTlsServerCertificate({
    publicKey: keys.publicKey,
    commonName: 'elsewhere',
    dnsNames: ['elsewhere.invalid'],
    ipAddresses: ['10.9.9.9'],
  });
  const elsewhere = await startServer({ cert, key: keys.privateKey });
  const err = await client({ baseUrl: elsewhere.url }).get('/ok', Ok).catch((e: unknown) => e);
  t.match(err, { code: 'SERVER_UNTRUSTED', message: /ERR_TLS_CERT_ALTNAME_INVALID/ });
  t.equal(exitCodeFor(err), 3);
});

t.test('when our certificate is from another CA then the handshake refusal is CLIENT_CERT_REFUSED, exit 4', async (t) => {
  const err = await client({ certPem: stranger.cert.pem + other.issuing.cert.pem, keyPem: await exportPrivateKeyPem(stranger.key) })
    .get('/ok', Ok)
    .catch((e: unknown) => e);
  t.match(err, { code: 'CLIENT_CERT_REFUSED' });
  t.equal(exitCodeFor(err), 4);
});

t.test('when nothing listens on the port then SERVER_UNREACHABLE, exit 1', async (t) => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const err = await client({ baseUrl: `https://127.0.0.1:${port}` }).get('/ok', Ok).catch((e: unknown) => e);
  t.match(err, { code: 'SERVER_UNREACHABLE' });
  t.equal(exitCodeFor(err), 1);
});

t.test('when the server trickles its answer and never ends it then SERVER_TOO_SLOW at the deadline, exit 1', async (t) => {
  const started = Date.now();
  const err = await client({ deadlineMs: 600 }).get('/trickle', Ok).catch((e: unknown) => e);
  t.match(err, { code: 'SERVER_TOO_SLOW', message: /did not finish its answer within 1 s/ });
  t.ok(Date.now() - started < 10_000, 'the deadline ended it, not the test');
  t.equal(exitCodeFor(err), 1);
});

t.test('when the answer grows past the limit then BAD_RESPONSE instead of holding it all', async (t) => {
  const err = await client({ maxAnswerBytes: 256 * 1024 }).get('/endless', Ok).catch((e: unknown) => e);
  t.match(err, { code: 'BAD_RESPONSE', message: /over 262144 bytes/ });
});

t.test('when an error answer is larger than any error envelope then open() stops reading it', async (t) => {
  const { open } = await import('../../client-cli/messaging/transport.js');
  const huge = createServer(
    { key: await exportPrivateKeyPem(serverTls.key), cert: serverTls.cert.pem + chainPem, ca: [caPem, chainPem], requestCert: true, minVersion: 'TLSv1.3' },
    (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      const timer = setInterval(() => res.write(' '.repeat(16 * 1024)), 5);
      res.on('close', () => clearInterval(timer));
      res.on('error', () => clearInterval(timer));
    },
  );
  await new Promise<void>((r) => huge.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => huge.close(() => r())));
  const ep = { baseUrl: `https://127.0.0.1:${(huge.address() as AddressInfo).port}`, caPem, certPem: staff.cert.pem + chainPem, keyPem: staffKeyPem, token: 't' };
  const err = await open(ep, 'GET', '/anything').catch((e: unknown) => e);
  t.match(err, { code: 'BAD_RESPONSE', message: /error answer over 65536 bytes/ });
});
