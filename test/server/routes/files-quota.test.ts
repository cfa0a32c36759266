/**
 * Regression (review: pending uploads had no cap), over HTTPS: the upload past the uploader's cap
 * answers 429 with the JSON error body and a message that says what to do, and a full cap never
 * stops another person's uploads.
 */
import t from 'tap';
import { httpHarness } from '../messaging/http-harness.js';

t.test('when an uploader passes the pending-upload cap then 429 TOO_MANY_PENDING_UPLOADS', async (t) => {
  const h = await httpHarness(t, { messaging: { maxPendingUploads: 2 } });
  const mallory = await h.app.createStaff({ login: 'q-mallory', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'q-bob', clearance: 'secret' });
  const M = h.as(mallory);
  const conv = (await M('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };
  const upload = (as: typeof M) =>
    as(`/v1/files?conversation=${conv.id}`, { rawBody: Buffer.alloc(100_000, 3), headers: { 'content-type': 'application/octet-stream' } });
  for (let i = 0; i < 2; i++) t.equal((await upload(M)).status, 201);
  const r = await upload(M);
  t.equal(r.status, 429, JSON.stringify(r.body));
  t.equal(r.body.error.code, 'TOO_MANY_PENDING_UPLOADS');
  t.match(r.body.error.message, /2 uploads not attached to any message; the limit is 2: attach them to a message, or wait/);
  t.type(r.body.error.requestId, 'string');
  t.equal((await upload(h.as(bob))).status, 201, 'another person still uploads');
  t.equal((await upload(M)).status, 429, 'the connection answered the refused body and stays usable');
});
