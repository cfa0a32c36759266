/**
 * `DELETE /v1/files/:id` over HTTPS on the real appliance: the uploader discards a pending upload
 * and gets its room back; anyone else, or an id that does not exist, gets the same 404; an upload a
 * message carries answers 409 and stays downloadable; every refusal is the JSON error body.
 */
import t from 'tap';
import { httpHarness, sha384b64 } from '../messaging/http-harness.js';

t.test('discarding uploads over HTTPS', async (t) => {
  const h = await httpHarness(t, { messaging: { maxPendingUploads: 1 } });
  const alee = await h.app.createStaff({ login: 'fd-alee', clearance: 'secret' });
  const bkim = await h.app.createStaff({ login: 'fd-bkim', clearance: 'secret' });
  const A = h.as(alee);
  const B = h.as(bkim);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bkim.login } })).body as { id: string };
  const content = Buffer.alloc(100_000, 7);
  const upload = () => A(`/v1/files?conversation=${conv.id}`, { rawBody: content, headers: { 'content-type': 'application/octet-stream' } });
  const discard = (as: typeof A, id: string) => as(`/v1/files/${id}`, { method: 'DELETE' });
  const pendingOfAlee = async () =>
    (await h.app.appliance.vault.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM msg_files WHERE uploader = ? AND state = 'pending'`, [alee.login]))!.n;

  await t.test('when the uploader discards a pending upload then 200 and the cap has room again', async (t) => {
    const up = await upload();
    t.equal(up.status, 201);
    const id = (up.body as { fileId: string }).fileId;
    t.equal((await upload()).status, 429, 'control: the cap of 1 is full');
    const r = await discard(A, id);
    t.equal(r.status, 200, JSON.stringify(r.body));
    t.same(r.body, { id, discarded: true });
    t.equal(await pendingOfAlee(), 0, 'no pending row is left');
    t.equal((await A(`/v1/files/${id}`)).status, 404, 'it cannot be downloaded');
    const again = await upload();
    t.equal(again.status, 201, 'the next upload fits');
    t.equal((await discard(A, (again.body as { fileId: string }).fileId)).status, 200);
  });

  await t.test('when another person or an unknown id is named then the same 404 FILE_NOT_FOUND', async (t) => {
    const id = ((await upload()).body as { fileId: string }).fileId;
    const other = await discard(B, id);
    const unknown = await discard(B, 'AAAAAAAAAAAAAAAAAAAAAA');
    t.equal(other.status, 404);
    t.equal(other.body.error.code, 'FILE_NOT_FOUND');
    t.equal(unknown.status, 404);
    t.equal(unknown.body.error.code, 'FILE_NOT_FOUND');
    t.equal(other.body.error.message.replace(id, 'ID'), unknown.body.error.message.replace('AAAAAAAAAAAAAAAAAAAAAA', 'ID'), 'nothing says it exists');
    t.equal(await pendingOfAlee(), 1, "alee's upload is untouched");
    t.equal((await discard(A, id)).status, 200);
  });

  await t.test('when the upload is attached to a message then 409 FILE_ATTACHED and the recipient still downloads it', async (t) => {
    const up = (await upload()).body as { fileId: string; sha384: string; size: number };
    const msg = await h.compose(alee, conv.id, 'attached', { attachments: [{ id: up.fileId, name: 'a.bin', sha384: up.sha384, size: up.size }] });
    t.equal((await A('/v1/messages', { body: { header: msg.header, signature: msg.signature, body: msg.body } })).status, 201);
    const r = await discard(A, up.fileId);
    t.equal(r.status, 409, JSON.stringify(r.body));
    t.equal(r.body.error.code, 'FILE_ATTACHED');
    t.match(r.body.error.message, /attached to a message; delete the message instead/);
    t.type(r.body.error.requestId, 'string');
    const d = await B(`/v1/files/${up.fileId}`);
    t.equal(d.status, 200);
    t.equal(d.headers['x-sigil-sha384'], await sha384b64(content), 'the file is whole');
  });

  await t.test('when the id is malformed then 400 BAD_REQUEST', async (t) => {
    const r = await discard(A, 'not-an-id');
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'BAD_REQUEST');
  });
});
