/**
 * The worker-thread message checker (server/messaging/check-pool.ts) against the in-thread one:
 * same verdicts, digests and keyed hashes; concurrent checks all answer; checks in flight when
 * the workers stop fail with an error, and the pool starts fresh workers for the next ones; given
 * the conversation key, a message that verifies comes back sealed in the vault's format.
 */
import t, { type Test } from 'tap';
import { randomBytes, webcrypto } from 'node:crypto';
import { signDetached } from '../../../pki/index.js';
import { CheckPool, fromWire, inThreadChecker, own, packBatch } from '../../../server/messaging/check-pool.js';
import { pkiVerifier } from '../../../server/messaging/index.js';
import type { MessageCheck, MessageCheckInput } from '../../../server/messaging/ports.js';
import { makeTestCa } from '../../helpers/pki-fixtures.js';
import { open } from '../../../server/vault/index.js';
import { dekAad, unwrapDataKey } from '../../../server/vault/key-wrap.js';
import { messageAad, unpackMessage } from '../../../server/messaging/sealed-message.js';

const enc = new TextEncoder();

async function hmacOf(raw: Uint8Array): Promise<(s: string) => Promise<string>> {
  const key = await webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return async (s) => Buffer.from(await webcrypto.subtle.sign('HMAC', key, enc.encode(s))).toString('hex');
}

function plain(c: MessageCheck): unknown {
  return {
    ...c,
    check: c.check.ok ? { ...c.check, contentDigest: Buffer.from(c.check.contentDigest ?? []).toString('hex'), signingTime: c.check.signingTime?.toISOString() } : c.check,
  };
}

t.test('when messages are checked in worker threads then every result equals the in-thread check', async (t) => {
  const ca = await makeTestCa('p384');
  const alice = await ca.staff('alice', 'secret');
  const bob = await ca.staff('bob', 'secret');
  const raw = randomBytes(32);
  const pool = new CheckPool(2);
  t.teardown(() => pool.close());
  const viaPool = pool.checker(raw);
  const inThread = inThreadChecker(pkiVerifier, await hmacOf(raw));

  const inputs: MessageCheckInput[] = [];
  for (let i = 0; i < 12; i++) {
    const header = enc.encode(JSON.stringify({ id: `m${i}`, n: i }));
    const body = randomBytes(100 + i);
    const signature = await signDetached({ content: header, signerCert: alice.cert, signerKey: alice.key, label: 'secret' });
    inputs.push({ id: `m${i}`, signature, header, body, expectedSigner: alice.cert });
  }
  const tampered = inputs[0]!.header.slice();
  tampered[3]! ^= 1;
  inputs.push({ ...inputs[0]!, header: tampered }); // digest-mismatch
  inputs.push({ ...inputs[1]!, expectedSigner: bob.cert }); // signer-mismatch
  inputs.push({ ...inputs[2]!, signature: new Uint8Array([0x30, 0x03, 0x02, 0x01]) }); // malformed
  // A view into a larger buffer: the pool must send exactly its bytes.
  const big = Buffer.concat([Buffer.alloc(50, 7), Buffer.from(inputs[3]!.body), Buffer.alloc(50, 9)]);
  inputs.push({ ...inputs[3]!, body: big.subarray(50, 50 + inputs[3]!.body.length) });

  const [a, b] = await Promise.all([Promise.all(inputs.map(viaPool)), Promise.all(inputs.map(inThread))]);
  for (let i = 0; i < inputs.length; i++) t.same(plain(a[i]!), plain(b[i]!), `message ${i}: same result`);
  t.equal(a.filter((r) => r.check.ok).length, 13, 'the 12 good ones and the sliced-body copy verify');
  t.match(a[12]!.check, { ok: false, reason: 'digest-mismatch' });
  t.match(a[13]!.check, { ok: false, reason: 'signer-mismatch' });
  t.match(a[14]!.check, { ok: false, reason: 'malformed' });
  t.equal(a[15]!.bodySha384, a[3]!.bodySha384, 'the view was hashed, not its whole buffer');
});

t.test('when the workers stop with checks in flight then those fail and later checks get fresh workers', async (t) => {
  const ca = await makeTestCa('p256');
  const alice = await ca.staff('alice', 'secret');
  const pool = new CheckPool(1);
  t.teardown(() => pool.close());
  const check = pool.checker(randomBytes(32));
  const header = enc.encode('{"id":"x"}');
  const signature = await signDetached({ content: header, signerCert: alice.cert, signerKey: alice.key });
  const input: MessageCheckInput = { id: 'x', signature, header, body: new Uint8Array(1), expectedSigner: alice.cert };
  t.ok((await check(input)).check.ok, 'first check verifies');
  const inFlight = Promise.all(Array.from({ length: 300 }, () => check(input)));
  // Let the batch reach the worker, then stop it.
  await new Promise((r) => setImmediate(r));
  await pool.close();
  await t.rejects(inFlight, /message check worker exited/, 'the batch in flight fails with an error, not a verdict');
  t.ok((await check(input)).check.ok, 'a fresh worker answers the next check');
});

t.test('when a small Buffer (a view into Node\'s allocation pool) is sent then only its own bytes are copied', async (t) => {
  const small = Buffer.from('aGVsbG8gd29ybGQ=', 'base64'); // pooled: its ArrayBuffer is the 8 KiB pool
  t.ok(small.buffer.byteLength > small.byteLength, 'the fixture is a view');
  const owned = own(small);
  t.equal(owned.buffer.byteLength, small.byteLength, 'structured clone will copy 11 bytes, not the pool');
  t.same(Buffer.from(owned), small);
  const exact = new Uint8Array([1, 2, 3]);
  t.equal(own(exact), exact, 'an exact array is sent as is');
});

t.test('when a batch crosses to a worker then its bytes travel in one buffer of their own and each signer and key once', async (t) => {
  // Per message, only numbers and the id cross between isolates (check-protocol.ts): a buffer
  // each would be allocated and swept per message on both sides.
  const ca = await makeTestCa('p256');
  const alice = await ca.staff('alice', 'secret');
  const bob = await ca.staff('bob', 'secret');
  const ck = await webcrypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const pooled = Buffer.from('c2lnbmF0dXJl', 'base64'); // a view into Node's 8 KiB pool
  const inputs: MessageCheckInput[] = [
    { id: 'a', signature: pooled, header: enc.encode('{"h":1}'), body: enc.encode('one'), expectedSigner: alice.cert, sealWith: ck },
    { id: 'b', signature: enc.encode('sig-b'), header: enc.encode('{"h":2}'), body: enc.encode('two'), expectedSigner: bob.cert, sealWith: ck },
    { id: 'c', signature: enc.encode('sig-c'), header: enc.encode('{"h":3}'), body: new Uint8Array(0), expectedSigner: alice.cert },
  ];
  const batch = packBatch(7, new Uint8Array(32), inputs);
  t.equal(batch.data.buffer.byteLength, batch.data.byteLength, 'the data owns its whole ArrayBuffer (a transfer detaches all of it, never the pool)');
  t.equal(batch.data.byteLength, inputs.reduce((n, m) => n + m.signature.length + m.header.length + m.body.length, 0));
  t.equal(batch.signers.length, 2, 'two signers for three messages');
  t.same(Buffer.from(batch.signers[batch.jobs[2]!.signer]!), Buffer.from(alice.cert.der));
  t.equal(batch.sealKeys.length, 1, 'one conversation key for the two sealed messages');
  t.same(batch.jobs.map((j) => j.sealWith), [0, 0, -1]);
  const at = ([o, n]: readonly [number, number]): string => Buffer.from(batch.data.subarray(o, o + n)).toString();
  t.same(batch.jobs.map((j) => [j.id, at(j.signature), at(j.header), at(j.body)]), inputs.map((m) => [m.id, Buffer.from(m.signature).toString(), Buffer.from(m.header).toString(), Buffer.from(m.body).toString()]));

  const copy = structuredClone(batch, { transfer: [batch.data.buffer] });
  t.equal(batch.data.byteLength, 0, 'posted with a transfer: the sender keeps nothing');
  t.equal(copy.data.byteLength, 3 * 7 + 5 + 5 + 9 + 3 + 3);

  const reply = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  const r = fromWire({ ok: true, contentDigest: [2, 3], bodySha384: 'x', subject: 's', headerHash: 'h', sealed: { wrapped: [0, 2], blob: [5, 3] } }, reply);
  t.ok(r.ok);
  if (r.ok) {
    t.same([...r.contentDigest], [3, 4, 5]);
    t.same([...r.sealed!.wrapped], [1, 2]);
    t.same([...r.sealed!.blob], [6, 7, 8]);
    t.equal(r.sealed!.blob.buffer, reply.buffer, 'views of the one reply buffer, not copies');
  }
});

t.test('when the workers have been idle for the idle time then they exit, and the next check starts one again', async (t) => {
  const ca = await makeTestCa('p256');
  const alice = await ca.staff('alice', 'secret');
  const pool = new CheckPool(2, 150);
  t.teardown(() => pool.close());
  const check = pool.checker(randomBytes(32));
  const header = enc.encode('{"id":"y"}');
  const signature = await signDetached({ content: header, signerCert: alice.cert, signerKey: alice.key });
  const input: MessageCheckInput = { id: 'y', signature, header, body: new Uint8Array(1), expectedSigner: alice.cert };
  await Promise.all(Array.from({ length: 20 }, () => check(input)));
  t.ok(pool.workers >= 1, `${pool.workers} worker(s) after a burst`);
  const deadline = Date.now() + 5000;
  while (pool.workers > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(pool.workers, 0, 'idle workers exited');
  t.ok((await check(input)).check.ok, 'a new worker answers');
  t.equal(pool.workers, 1);
});

/** A one-worker pool that seals, alice (P-384, secret), a conversation key and a header signed by her. */
async function sealingPool(t: Test, headerId: string) {
  const ca = await makeTestCa('p384');
  const alice = await ca.staff('alice', 'secret');
  const pool = new CheckPool(1);
  t.teardown(() => pool.close());
  const check = pool.checker(randomBytes(32));
  const ck = await webcrypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt', 'unwrapKey']);
  const header = enc.encode(JSON.stringify({ id: headerId }));
  const signature = await signDetached({ content: header, signerCert: alice.cert, signerKey: alice.key, label: 'secret' });
  return { alice, check, ck, header, signature };
}

t.test('when a check is given the conversation key then a message that verifies comes back sealed for the vault', async (t) => {
  // The worker seals with synchronous node:crypto (server/vault/seal-sync.ts); the vault reads
  // with WebCrypto. The wrapped key must unwrap under the CK with AAD dek:<id>, and the blob open
  // under that key with AAD sigil-msg:<id> into exactly header, signature and body.
  const { alice, check, ck, header, signature } = await sealingPool(t, 'sealed-1');
  const body = randomBytes(300);

  const r = await check({ id: 'sealed-1', signature, header, body, expectedSigner: alice.cert, sealWith: ck });
  t.ok(r.check.ok && r.sealed, 'verified and sealed');
  const dek = await unwrapDataKey(ck, r.sealed!.wrapped, dekAad('sealed-1'));
  const inner = unpackMessage(await open(dek, r.sealed!.blob, messageAad('sealed-1')));
  t.same([inner.header, inner.signature, inner.body].map((b) => Buffer.from(b)), [header, signature, body].map((b) => Buffer.from(b)));
  await t.rejects(open(dek, r.sealed!.blob, messageAad('other')), { code: 'VAULT_DECRYPT_FAILED' }, 'bound to its id');
  t.notOk(Buffer.from(r.sealed!.blob).includes(Buffer.from(body.subarray(0, 32))), 'no plaintext in the blob');

  const again = await check({ id: 'sealed-1', signature, header, body, expectedSigner: alice.cert, sealWith: ck });
  t.not(Buffer.from(again.sealed!.wrapped).toString('hex'), Buffer.from(r.sealed!.wrapped).toString('hex'), 'a fresh key and IV each time');

  const bad = await check({ id: 'sealed-1', signature, header: enc.encode('{"id":"forged"}'), body, expectedSigner: alice.cert, sealWith: ck });
  t.equal(bad.check.ok, false);
  t.equal(bad.sealed, undefined, 'a message that does not verify is not sealed');
});

t.test('when many messages are sealed in one batch then each has its own key and IVs, none sharing a byte range', async (t) => {
  // The worker draws a batch's keys and IVs from the CSPRNG at once and hands each message its
  // slice; a wrong stride would give two messages overlapping key or IV bytes.
  const { alice, check, ck, header, signature } = await sealingPool(t, 'batch');
  const ids = Array.from({ length: 24 }, (_, i) => `batch-${i}`);
  // Started in one tick, so they leave for the worker together.
  const rs = await Promise.all(ids.map((id) => check({ id, signature, header, body: enc.encode(id), expectedSigner: alice.cert, sealWith: ck })));
  const keys: Buffer[] = [];
  const ivs: Buffer[] = [];
  for (const [i, r] of rs.entries()) {
    const id = ids[i]!;
    // A wrapped key is a seal of the raw key under the CK: opening it with the CK shows the key.
    const raw = Buffer.from(await open(ck, r.sealed!.wrapped, dekAad(id)));
    keys.push(raw);
    ivs.push(Buffer.from(r.sealed!.wrapped.subarray(1, 13)), Buffer.from(r.sealed!.blob.subarray(1, 13)));
    const dek = await unwrapDataKey(ck, r.sealed!.wrapped, dekAad(id));
    t.same(Buffer.from(unpackMessage(await open(dek, r.sealed!.blob, messageAad(id))).body), Buffer.from(enc.encode(id)), `${id} opens under its own key`);
  }
  t.equal(new Set(keys.map((k) => k.toString('hex'))).size, ids.length, 'every key differs');
  t.equal(new Set(ivs.map((v) => v.toString('hex'))).size, 2 * ids.length, 'every IV differs');
  const shared = keys.flatMap((k) => ivs.filter((iv) => k.includes(iv.subarray(0, 8)))).length;
  t.equal(shared, 0, 'no IV repeats bytes of any key');
  t.ok(keys.every((k) => k.length === 32 && !k.equals(Buffer.alloc(32))), 'keys are whole and not zeroed before use');
});
