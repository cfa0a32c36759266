/**
 * Streaming transfers and the event stream against a real appliance (messaging mounted): a file
 * uploaded in a stream comes back byte for byte; a download that does not match the signed digest
 * is deleted; an existing output is not overwritten; an upload whose stored size differs from what
 * was read is refused; the event stream gives up after its reconnect budget on a dead server.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer } from 'node:net';
import { exportPrivateKeyPem } from '../../../pki/index.js';
import { makeTestCa } from '../../helpers/pki-fixtures.js';
import { join } from 'node:path';
import t from 'tap';
import { downloadFile, uploadFile, type Endpoint } from '../../../client-cli/messaging/transport.js';
import { followEvents } from '../../../client-cli/messaging/events.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';

const h = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-transport-');
const alee = await h.app.createStaff({ login: 'alee', clearance: 'secret' });
const bkim = await h.app.createStaff({ login: 'bkim', clearance: 'secret' });
const conv = await h.as(alee)('/v1/conversations/direct', { body: { peer: 'bkim' } });
const ep: Endpoint = { baseUrl: h.app.url, caPem: h.app.caPem, certPem: alee.certPem, keyPem: alee.keyPem, token: alee.token };

const src = join(dir, 'data.bin');
const bytes = Buffer.alloc(700_000);
for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) & 0xff;
writeFileSync(src, bytes);

let up: { fileId: string; sha384: string; size: number };
t.test('when a file is uploaded in a stream then it downloads byte for byte with progress', async (t) => {
  const seen: number[] = [];
  up = await uploadFile(ep, conv.body.id, src, bytes.length, (n) => seen.push(n));
  t.equal(up.size, bytes.length);
  t.equal(seen.at(-1), bytes.length);
  const out = join(dir, 'back.bin');
  const d = await downloadFile(ep, up.fileId, out, { sha384: up.sha384, size: up.size });
  t.equal(d.bytes, bytes.length);
  t.ok(readFileSync(out).equals(bytes));
  await t.rejects(downloadFile(ep, up.fileId, out, { sha384: up.sha384, size: up.size }), { code: 'OUTPUT_EXISTS' });
  t.ok(readFileSync(out).equals(bytes), 'the existing file is untouched');
});

t.test('when the download does not match the signed digest then the partial file is deleted', async (t) => {
  const out = join(dir, 'wrong.bin');
  await t.rejects(downloadFile(ep, up.fileId, out, { sha384: 'B'.repeat(64), size: up.size }), { code: 'DOWNLOAD_MISMATCH', message: /SHA-384 differs/ });
  t.notOk(existsSync(out));
  await t.rejects(downloadFile(ep, up.fileId, out, { sha384: up.sha384, size: up.size + 1 }), { code: 'DOWNLOAD_MISMATCH', message: /expected/ });
  t.notOk(existsSync(out));
});

t.test('when another user asks for a pending file then the server refuses and nothing is written', async (t) => {
  const out = join(dir, 'theirs.bin');
  const other: Endpoint = { ...ep, certPem: bkim.certPem, keyPem: bkim.keyPem, token: bkim.token };
  await t.rejects(downloadFile(other, up.fileId, out, { sha384: up.sha384, size: up.size }), { code: /FILE_NOT_FOUND|FORBIDDEN|NOT_A_MEMBER/ });
  t.notOk(existsSync(out));
});

t.test('when the file grows during the upload then exactly the announced bytes are sent', async (t) => {
  const r = await uploadFile(ep, conv.body.id, src, 1000);
  t.equal(r.size, 1000);
});

t.test('when a server answers another digest than was sent then the upload is refused', async (t) => {
  // A TLS peer that accepts anything and claims a different digest (a server that lost bytes).
  const ca = await makeTestCa('p256');
  const tls = await ca.tlsServer();
  const srv = createHttpsServer({ cert: tls.cert.pem + ca.issuing.cert.pem, key: await exportPrivateKeyPem(tls.key) }, (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ fileId: 'f'.repeat(22), sha384: 'C'.repeat(64), size: 10 })));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await t.rejects(uploadFile({ ...ep, baseUrl: `https://127.0.0.1:${port}`, caPem: ca.root.cert.pem }, conv.body.id, src, 10), { code: 'UPLOAD_MISMATCH' });
  srv.close();
});

t.test('when the event stream cannot reconnect then it fails after its budget', async (t) => {
  const srv = createServer((s) => s.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const reconnects: number[] = [];
  const ac = new AbortController();
  await t.rejects(
    followEvents({ ...ep, baseUrl: `https://127.0.0.1:${port}` }, { signal: ac.signal, onEvent: () => undefined, onReconnect: (n) => reconnects.push(n), maxAttempts: 2, backoffMs: () => 10 }),
    { code: 'STREAM_FAILED' },
  );
  t.same(reconnects, [1, 2]);
  srv.close();
});
