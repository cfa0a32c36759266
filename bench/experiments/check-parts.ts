/**
 * What a check worker spends on one message beside the ECDSA verify, part by part, on one thread
 * with nothing else running: the body's SHA-384 and the subject's HMAC, the session certificate's
 * cache lookup, reading the CMS SignedData (`prepareDetached`: forge's DER reader), the content
 * digest and the signed-attribute checks (`finishDetached`), the header HMAC and the seal (a fresh
 * message key wrapped under the conversation key, the message packed and sealed under it). The
 * same calls as check-worker.ts's `checkOne`, minus `crypto.verify`; then the whole
 * `verifyDetachedSync` beside the raw verify for the same messages.
 *
 *   make build && node dist/bench/experiments/check-parts.js
 *
 * Knobs: BENCH_SECONDS (4 per loop). Not run by `make bench`; the answer is in bench/README.md
 * ("Fourteenth session").
 */
import { createHash, createHmac, createPublicKey, createSecretKey, randomFillSync, verify } from 'node:crypto';
import { finishDetached, prepareDetached } from '../../pki/cms-verify-core.js';
import { cachedCertificate } from '../../pki/cms-signers.js';
import { verifyDetachedSync } from '../../pki/cms-verify-sync.js';
import { headerHashInput, subjectInput } from '../../server/messaging/check-protocol.js';
import { messageAad, packMessage } from '../../server/messaging/sealed-message.js';
import { IV_BYTES } from '../../server/vault/aead.js';
import { DATA_KEY_BYTES, dekAad } from '../../server/vault/key-wrap.js';
import { FRESH_BYTES_PER_MESSAGE, createWrappedKeySync, sealSync } from '../../server/vault/seal-sync.js';
import { sampleSigner, signedSamples, type SampleMessage } from '../lib/signed-sample.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);

const signer = await sampleSigner();
const messages = await signedSamples(200, signer);
const signerDer = Buffer.from(signer.cert.der);
const conversationKey = createSecretKey(randomFillSync(Buffer.alloc(32)));
const hmacKey = randomFillSync(Buffer.alloc(32));
const keyed = (data: string): string => createHmac('sha256', hmacKey).update(data).digest('hex');
const fresh = randomFillSync(Buffer.alloc(FRESH_BYTES_PER_MESSAGE));

const PARTS = ['body SHA-384 + subject HMAC', 'certificate cache', 'read the SignedData', 'content digest + attribute checks', 'header HMAC + seal'] as const;

/** checkOne without the verify; adds each part's milliseconds to `into`. */
function nonVerify(m: SampleMessage, into: number[]): void {
  let t = performance.now();
  const lap = (i: number): void => {
    const now = performance.now();
    into[i]! += now - t;
    t = now;
  };
  createHash('sha384').update(m.body).digest('base64');
  keyed(subjectInput(m.id));
  lap(0);
  const cert = cachedCertificate(Buffer.from(signerDer));
  lap(1);
  const prepared = prepareDetached(m.signature, m.header, cert);
  if (!prepared.ok) throw new Error(`sample does not parse: ${prepared.detail}`);
  lap(2);
  const digest = createHash('sha384').update(m.header).digest();
  const r = finishDetached(prepared, new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength), true);
  if (!r.ok) throw new Error(`sample does not check: ${r.detail}`);
  lap(3);
  keyed(headerHashInput(r.contentDigest));
  const { raw } = createWrappedKeySync(conversationKey, dekAad(m.id), fresh.subarray(0, DATA_KEY_BYTES + IV_BYTES));
  sealSync(raw, packMessage(m.header, m.signature, m.body), messageAad(m.id), fresh.subarray(DATA_KEY_BYTES + IV_BYTES));
  lap(4);
}

/** Runs `fn` over the samples for SECONDS after a short warm-up; µs per call. */
function loop(fn: (m: SampleMessage) => void): { us: number; n: number } {
  for (let i = 0; i < 400; i++) fn(messages[i % messages.length]!);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) fn(messages[n++ % messages.length]!);
  return { us: ((performance.now() - t0) * 1000) / n, n };
}

const parts = PARTS.map(() => 0);
const beside = loop((m) => nonVerify(m, parts));
const key = createPublicKey({ key: Buffer.from(signer.cert.publicKeySpki), format: 'der', type: 'spki' });
const prepared = messages.map((m) => {
  const p = prepareDetached(m.signature, m.header, signer.cert);
  if (!p.ok) throw new Error('sample does not parse');
  return p;
});
let k = 0;
const raw = loop(() => {
  const p = prepared[k++ % prepared.length]!;
  verify('sha384', p.si.signedAttrsDer!, { key, dsaEncoding: 'der' }, p.si.signature);
});
const whole = loop((m) => {
  if (!verifyDetachedSync(m.signature, m.header, { expectedSigner: signer.cert }).ok) throw new Error('sample does not verify');
});

console.log(`check-parts: P-384, 256-byte bodies, one thread, ${SECONDS} s per loop; node ${process.version}`);
console.log(`beside the verify  ${beside.us.toFixed(1)} µs per message:`);
PARTS.forEach((name, i) => console.log(`  ${name.padEnd(36)} ${((parts[i]! * 1000) / beside.n).toFixed(1)} µs`));
console.log(`raw crypto.verify  ${raw.us.toFixed(1)} µs · verifyDetachedSync (read + digest + verify + checks) ${whole.us.toFixed(1)} µs`);
console.log(`so a whole check is ~${(whole.us + beside.us - ((parts[2]! + parts[3]!) * 1000) / beside.n).toFixed(0)} µs on an idle core, ${(((whole.us + beside.us - ((parts[2]! + parts[3]!) * 1000) / beside.n) / raw.us - 1) * 100).toFixed(0)} % over the raw verify`);
