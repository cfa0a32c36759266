/**
 * Messaging over the real appliance: TLS client certificates, sessions, the routes as mounted,
 * and the auditor's view — a stored message verifies with the real `openssl cms -verify`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { verifyDetached } from '../../../pki/index.js';
import { httpHarness, sha384b64 } from '../messaging/http-harness.js';

t.test('messaging over HTTPS', async (t) => {
  const h = await httpHarness(t);
  const alice = await h.app.createStaff({ login: 'e-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'e-bob', clearance: 'secret' });
  const carol = await h.app.createStaff({ login: 'e-carol', clearance: 'restricted' });
  const A = h.as(alice);
  const B = h.as(bob);
  const C = h.as(carol);
  const O = h.as(h.app.officer);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };

  await t.test('when alice sends a signed message then bob reads it and it verifies with openssl', async (t) => {
    const msg = await h.compose(alice, conv.id, 'the body of a secret message', { label: 'secret' });
    const r = await A('/v1/messages', { body: { header: msg.header, signature: msg.signature, body: msg.body } });
    t.equal(r.status, 201, JSON.stringify(r.body));
    t.equal(r.body.id, msg.id);
    t.type(r.body.seq, 'number');
    t.type(r.body.audit?.index, 'number');

    const list = await B('/v1/conversations');
    t.equal(list.body.conversations.find((c: { id: string }) => c.id === conv.id)?.unread, 1);
    const page = await B(`/v1/conversations/${conv.id}/messages`);
    t.equal(page.status, 200);
    const got = page.body.messages[0];
    t.equal(got.header, msg.header);
    t.equal(Buffer.from(got.body, 'base64').toString(), 'the body of a secret message');

    // The reader verifies the signature itself…
    const v = await verifyDetached(Buffer.from(got.signature, 'base64'), Buffer.from(got.header), { expectedSigner: alice.cert });
    t.ok(v.ok);
    t.equal(v.ok && v.label, 'secret');
    // …and so does an auditor with openssl, against the appliance CA.
    const dir = mkdtempSync(join(tmpdir(), 'sigil-e2e-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'header.json'), got.header);
    writeFileSync(join(dir, 'sig.der'), Buffer.from(got.signature, 'base64'));
    writeFileSync(join(dir, 'ca.pem'), h.app.caPem);
    const out = execFileSync(
      'openssl',
      ['cms', '-verify', '-binary', '-inform', 'DER', '-in', join(dir, 'sig.der'), '-content', join(dir, 'header.json'),
        '-CAfile', join(dir, 'ca.pem'), '-out', '/dev/null'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    t.ok(out !== undefined, 'openssl cms -verify accepted the stored signature');

    const read = await B(`/v1/conversations/${conv.id}/read`, { body: { upTo: r.body.seq } });
    t.equal(read.status, 200);
    const rc = await A(`/v1/messages/${msg.id}/receipts`);
    t.same(rc.body.read.map((x: { login: string }) => x.login), [bob.login]);
  });

  await t.test('when the signature is over other bytes then 422 MESSAGE_BAD_SIGNATURE', async (t) => {
    const one = await h.compose(alice, conv.id, 'one');
    const two = await h.compose(alice, conv.id, 'two');
    const r = await A('/v1/messages', { body: { header: one.header, signature: two.signature, body: one.body } });
    t.equal(r.status, 422);
    t.equal(r.body.error.code, 'MESSAGE_BAD_SIGNATURE');
    t.type(r.body.error.requestId, 'string');
  });

  await t.test('when bob sends as alice then 403 MESSAGE_SENDER_MISMATCH', async (t) => {
    const m = await h.compose(alice, conv.id, 'x');
    const r = await B('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
    t.equal(r.status, 403);
    t.equal(r.body.error.code, 'MESSAGE_SENDER_MISMATCH');
  });

  await t.test('when the body field is missing then 400 BAD_REQUEST naming it', async (t) => {
    const m = await h.compose(alice, conv.id, 'x');
    const r = await A('/v1/messages', { body: { header: m.header, signature: m.signature } });
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'BAD_REQUEST');
    t.match(r.body.error.message, /body/);
  });

  await t.test('when a JSON body is over the route limit then 413 BODY_TOO_LARGE', async (t) => {
    const big = await A('/v1/messages', { rawBody: JSON.stringify({ header: 'x', signature: 'x', body: 'A'.repeat(2 * 1024 * 1024) }) });
    t.equal(big.status, 413);
    t.equal(big.body.error.code, 'BODY_TOO_LARGE');
    const grp = await A('/v1/groups', { rawBody: JSON.stringify({ name: 'x'.repeat(100_000), label: 'secret' }) });
    t.equal(grp.status, 413);
    t.equal(grp.body.error.code, 'BODY_TOO_LARGE');
    const near = await h.compose(alice, conv.id, new Uint8Array(900 * 1024), { label: 'secret' });
    const ok = await A('/v1/messages', { body: { header: near.header, signature: near.signature, body: near.body } });
    t.equal(ok.status, 201, 'a message near the body limit still passes');
  });

  await t.test('when there is no session then 401 AUTH_REQUIRED', async (t) => {
    const r = await h.app.request('/v1/conversations', { cert: alice.certPem, key: alice.keyPem });
    t.equal(r.status, 401);
    t.equal(r.body.error.code, 'AUTH_REQUIRED');
  });

  await t.test('when a conversation id is unknown then 404 CONVERSATION_NOT_FOUND', async (t) => {
    const r = await A('/v1/conversations/AAAAAAAAAAAAAAAAAAAAAA/messages');
    t.equal(r.status, 404);
    t.equal(r.body.error.code, 'CONVERSATION_NOT_FOUND');
  });

  await t.test('when groups are managed over HTTP then clearance rules hold', async (t) => {
    const g = await A('/v1/groups', { body: { name: 'ops', label: 'secret' } });
    t.equal(g.status, 201, JSON.stringify(g.body));
    t.equal((await A('/v1/groups', { body: { name: 'ops', label: 'secret' } })).body.error.code, 'GROUP_EXISTS');
    const low = await A('/v1/groups/ops/members', { body: { login: carol.login } });
    t.equal(low.status, 403);
    t.equal(low.body.error.code, 'CLEARANCE_TOO_LOW');
    const add = await A('/v1/groups/ops/members', { body: { login: bob.login } });
    t.same(add.body.members.map((m: { login: string }) => m.login).sort(), [alice.login, bob.login]);
    t.equal((await C('/v1/groups/ops')).body.error.code, 'GROUP_NOT_FOUND');
    t.equal((await B('/v1/groups/ops/members', { body: { login: carol.login } })).body.error.code, 'FORBIDDEN');
    const rm = await A(`/v1/groups/ops/members/${bob.login}`, { method: 'DELETE' });
    t.equal(rm.status, 200);
    t.equal(rm.body.members.length, 1);
  });

  await t.test('when a file is uploaded and attached then bob downloads the same bytes', async (t) => {
    const content = Buffer.alloc(700_000, 'sigil-file ');
    const up = await A(`/v1/files?conversation=${conv.id}`, {
      rawBody: content,
      headers: { 'content-type': 'application/octet-stream' },
    });
    t.equal(up.status, 201, JSON.stringify(up.body));
    t.equal(up.body.sha384, await sha384b64(content));
    const m = await h.compose(alice, conv.id, 'file attached', {
      attachments: [{ id: up.body.fileId, name: 'report.txt', sha384: up.body.sha384, size: up.body.size }],
    });
    t.equal((await A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } })).status, 201);
    const d = await B(`/v1/files/${up.body.fileId}`);
    t.equal(d.status, 200);
    t.equal(d.headers['x-sigil-sha384'], up.body.sha384);
    t.equal(Buffer.from(d.body as string).length, content.length);
    t.ok(Buffer.from(d.body as string).equals(content));
    const none = await C(`/v1/files/${up.body.fileId}`);
    t.equal(none.status, 404);
    t.equal(none.body.error.code, 'FILE_NOT_FOUND');
  });

  await t.test('when an upload is over the limit then 413 FILE_TOO_LARGE', async (t) => {
    const r = await A(`/v1/files?conversation=${conv.id}`, { rawBody: Buffer.alloc(5 * 1024 * 1024) });
    t.equal(r.status, 413);
    t.equal(r.body.error.code, 'FILE_TOO_LARGE');
  });

  await t.test('when the client drops mid-upload then nothing of it is stored', async (t) => {
    const db = h.app.appliance.vault.db;
    const count = async () => (await db.get<{ n: number }>('SELECT (SELECT COUNT(*) FROM msg_files) + (SELECT COUNT(*) FROM msg_file_chunks) AS n'))!.n;
    const before = await count();
    const url = new URL(h.app.url);
    const sock = tls.connect({
      host: url.hostname,
      port: Number(url.port),
      ca: h.app.caPem,
      cert: alice.certPem,
      key: alice.keyPem,
      minVersion: 'TLSv1.3',
    });
    await new Promise<void>((res, rej) => sock.once('secureConnect', res).once('error', rej));
    sock.write(
      `POST /v1/files?conversation=${conv.id} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${alice.token}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: 2000000\r\n\r\n`,
    );
    sock.write(Buffer.alloc(600_000, 7));
    // Wait until the server has stored at least one chunk, then drop the connection.
    for (let i = 0; i < 100 && (await count()) === before; i++) await new Promise((r) => setTimeout(r, 50));
    t.ok((await count()) > before, 'control: the upload was being stored');
    sock.destroy();
    for (let i = 0; i < 100 && (await count()) !== before; i++) await new Promise((r) => setTimeout(r, 50));
    t.equal(await count(), before, 'the aborted upload left no file row and no chunk');
  });

  await t.test('when alice deletes her message then it is gone for bob', async (t) => {
    const m = await h.compose(alice, conv.id, 'delete me');
    await A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
    const wrong = await B(`/v1/messages/${m.id}`, { method: 'DELETE', body: await h.deleteBody(bob, `message:${m.id}`) });
    t.equal(wrong.body.error.code, 'FORBIDDEN');
    const del = await A(`/v1/messages/${m.id}`, { method: 'DELETE', body: await h.deleteBody(alice, `message:${m.id}`) });
    t.equal(del.status, 200, JSON.stringify(del.body));
    t.equal(del.body.count, 1);
    t.equal(del.body.deletedBy, alice.login);
    const gone = await B(`/v1/messages/${m.id}`);
    t.equal(gone.status, 404);
    t.equal(gone.body.error.code, 'MESSAGE_NOT_FOUND');
  });

  await t.test('when an officer destroys a user correspondence then it is gone', async (t) => {
    const notOfficer = await B(`/v1/users/${alice.login}/correspondence`, {
      method: 'DELETE',
      body: await h.deleteBody(bob, `user:${alice.login}`),
    });
    t.equal(notOfficer.status, 403);
    const r = await O(`/v1/users/${alice.login}/correspondence`, {
      method: 'DELETE',
      body: await h.deleteBody(h.app.officer, `user:${alice.login}`, 'investigation closed'),
    });
    t.equal(r.status, 200, JSON.stringify(r.body));
    t.ok(r.body.count >= 1);
    const hist = await B(`/v1/conversations/${conv.id}/messages`);
    t.equal(hist.body.error.code, 'CONVERSATION_NOT_FOUND');
  });

  await t.test('when a participant deletes a direct conversation then it is destroyed', async (t) => {
    const c2 = (await B('/v1/conversations/direct', { body: { peer: carol.login } })).body as { id: string };
    const m = await h.compose(bob, c2.id, 'bye');
    await B('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
    const del = await C(`/v1/conversations/${c2.id}`, { method: 'DELETE', body: await h.deleteBody(carol, `conversation:${c2.id}`) });
    t.equal(del.status, 200, JSON.stringify(del.body));
    t.equal(del.body.count, 1);
    t.equal((await B(`/v1/messages/${m.id}`)).status, 404);
  });
});
