/**
 * Streaming transfers and the event stream against a real appliance (messaging mounted): a file
 * uploaded in a stream comes back byte for byte; a download that does not match the signed digest
 * is deleted; an existing output is not overwritten; an upload whose stored size differs from what
 * was read is refused; the event stream gives up after its reconnect budget on a dead server.
 * Downloads against TLS peers that break, stall or are aborted half-way: the bytes go to a
 * hidden partial file, so the output (or the file --force would replace) is never touched by
 * unverified bytes and nothing is left behind.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';
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

// A TLS peer serving one 1 MiB "attachment" whose first half arrives at once; `rest` decides
// what happens then (drop the connection, stall, or send the remainder later).
const whole = Buffer.alloc(1 << 20);
for (let i = 0; i < whole.length; i++) whole[i] = (i * 13 + 5) & 0xff;
const wholeExpected = { sha384: createHash('sha384').update(whole).digest('base64'), size: whole.length };
const peerCa = await makeTestCa('p256');
const peerTls = await peerCa.tlsServer();
const peerKey = await exportPrivateKeyPem(peerTls.key);

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

t.test('when the file to upload is gone, or shorter than announced, then one clear error, never a crash or a hang', async (t) => {
  // Both happen when the file changes between `sigil send` looking at it and sending it.
  await t.rejects(uploadFile(ep, conv.body.id, join(dir, 'gone.bin'), 10), { code: 'INPUT_INVALID', message: /gone\.bin is not a readable file$/ });
  const short = join(dir, 'short.bin');
  writeFileSync(short, Buffer.alloc(1000, 1));
  const started = Date.now();
  await t.rejects(uploadFile(ep, conv.body.id, short, 5000), {
    code: 'INPUT_INVALID',
    message: /short\.bin is not a file that keeps its size while it is sent \(it shrank while being sent: 1000 of 5000 bytes\)$/,
  });
  t.ok(Date.now() - started < 10_000, 'refused at once, not after the request timed out');
  up = up ?? (await uploadFile(ep, conv.body.id, src, bytes.length));
  const again = await uploadFile(ep, conv.body.id, src, bytes.length);
  t.equal(again.sha384, up.sha384, 'the next upload goes through');
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

t.test('when a server answers another digest than was sent then the upload is refused and what it stored is discarded', async (t) => {
  // A TLS peer that accepts anything and claims a different digest (a server that lost bytes).
  const ca = await makeTestCa('p256');
  const tls = await ca.tlsServer();
  const seen: string[] = [];
  const srv = createHttpsServer({ cert: tls.cert.pem + ca.issuing.cert.pem, key: await exportPrivateKeyPem(tls.key) }, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    const answer = req.method === 'DELETE' ? { id: 'f'.repeat(22), discarded: true } : { fileId: 'f'.repeat(22), sha384: 'C'.repeat(64), size: 10 };
    req.on('end', () => res.writeHead(req.method === 'DELETE' ? 200 : 201, { 'content-type': 'application/json' }).end(JSON.stringify(answer)));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await t.rejects(uploadFile({ ...ep, baseUrl: `https://127.0.0.1:${port}`, caPem: ca.root.cert.pem }, conv.body.id, src, 10), { code: 'UPLOAD_MISMATCH' });
  t.same(seen, [`POST /v1/files?conversation=${conv.body.id}`, `DELETE /v1/files/${'f'.repeat(22)}`], 'the mismatched upload was discarded: no message will name it');
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

async function halfThen(t: { teardown(fn: () => void): void }, rest: (res: ServerResponse) => void): Promise<Endpoint> {
  const srv: Server = createHttpsServer({ cert: peerTls.cert.pem + peerCa.issuing.cert.pem, key: peerKey }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(whole.length) });
    res.write(whole.subarray(0, whole.length / 2), () => rest(res));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    srv.closeAllConnections();
    srv.close();
  });
  return { ...ep, baseUrl: `https://127.0.0.1:${(srv.address() as { port: number }).port}`, caPem: peerCa.root.cert.pem };
}

/** Waits until a partial file with some bytes exists in `folder`; returns its name. */
async function partialIn(folder: string): Promise<string> {
  for (const end = Date.now() + 20_000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    const name = readdirSync(folder).find((n) => n.includes('.sigil-partial-'));
    if (name && statSync(join(folder, name)).size > 0) return name;
  }
  throw new Error(`no partial file with bytes in ${folder}: ${readdirSync(folder).join(', ')}`);
}

t.test('when the connection drops half-way during a --force download then the existing file is unchanged and no partial file remains', async (t) => {
  const peer = await halfThen(t, (res) => setTimeout(() => res.socket?.destroy(), 100));
  const folder = join(dir, 'drop');
  mkdirSync(folder);
  const out = join(folder, 'report.pdf');
  writeFileSync(out, 'the original report');
  await t.rejects(downloadFile(peer, 'f'.repeat(22), out, wholeExpected, { force: true }), { code: 'DOWNLOAD_MISMATCH', message: /transfer broke/ });
  t.equal(readFileSync(out, 'utf8'), 'the original report', 'the original file is unchanged');
  t.same(readdirSync(folder), ['report.pdf'], 'no partial file is left');
});

t.test('when a download stalls and is aborted then it is named interrupted and nothing is left', async (t) => {
  const peer = await halfThen(t, () => undefined);
  const folder = join(dir, 'abort');
  mkdirSync(folder);
  const out = join(folder, 'report.pdf');
  const ac = new AbortController();
  const done = downloadFile(peer, 'f'.repeat(22), out, wholeExpected, { signal: ac.signal });
  const partial = await partialIn(folder);
  t.match(partial, new RegExp(`^\\.report\\.pdf\\.sigil-partial-${process.pid}-[0-9a-f]{12}$`), 'hidden, named after the target, owned by this process');
  t.equal(statSync(join(folder, partial)).mode & 0o777, 0o600, 'the partial file is 0600');
  ac.abort('SIGINT');
  await t.rejects(done, { code: 'DOWNLOAD_INTERRUPTED', message: /interrupted \(SIGINT\)/ });
  t.same(readdirSync(folder), [], 'neither the output nor a partial file');
});

t.test('when the output appears during a download without --force then it is not overwritten', async (t) => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const peer = await halfThen(t, (res) => void released.then(() => res.end(whole.subarray(whole.length / 2))));
  const folder = join(dir, 'appeared');
  mkdirSync(folder);
  const out = join(folder, 'report.pdf');
  const done = downloadFile(peer, 'f'.repeat(22), out, wholeExpected);
  await partialIn(folder);
  writeFileSync(out, 'written meanwhile');
  release();
  await t.rejects(done, { code: 'OUTPUT_EXISTS' });
  t.equal(readFileSync(out, 'utf8'), 'written meanwhile');
  t.same(readdirSync(folder), ['report.pdf'], 'no partial file is left');
});

t.test('when --force replaces a file then the new file is the verified bytes, 0600, with no partial file left', async (t) => {
  const folder = join(dir, 'force');
  mkdirSync(folder);
  const out = join(folder, 'back.bin');
  writeFileSync(out, 'old', { mode: 0o644 });
  await downloadFile(ep, up.fileId, out, { sha384: up.sha384, size: up.size }, { force: true });
  t.ok(readFileSync(out).equals(bytes));
  t.equal(statSync(out).mode & 0o777, 0o600);
  t.same(readdirSync(folder), ['back.bin']);
});

t.test('when the output is a folder then the download is refused as usage, with or without --force', async (t) => {
  const folder = join(dir, 'a-folder');
  mkdirSync(folder);
  for (const force of [false, true]) {
    await t.rejects(downloadFile(ep, up.fileId, folder, { sha384: up.sha384, size: up.size }, { force }), { code: 'USAGE', message: /is a folder/ });
  }
  t.same(readdirSync(dir).filter((n) => n.includes('.sigil-partial-')), [], 'no partial file beside it');
});
