/**
 * Worker-thread side of check-pool.ts: verifies batches of messages with synchronous node:crypto
 * (pki's verifyDetachedSync), hashes their bodies, computes their keyed hashes and, given the
 * conversation key, seals each message that verified under a fresh message key. Synchronous
 * crypto is right here and only here: this thread has nothing else to do, and one message costs it
 * one verify plus a few microseconds, where WebCrypto would cost the main thread ~10 job hops.
 */
import { createHmac, createHash, KeyObject, randomFillSync } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { verifyDetachedSync } from '../../pki/cms-verify-sync.js';
import { cachedCertificate } from '../../pki/cms-signers.js';
import { FRESH_BYTES_PER_MESSAGE, createWrappedKeySync, sealSync } from '../vault/seal-sync.js';
import { DATA_KEY_BYTES, dekAad } from '../vault/key-wrap.js';
import { IV_BYTES } from '../vault/aead.js';
import { headerHashInput, subjectInput, type CheckBatch, type CheckResult, type SealedMessage } from './check-protocol.js';
import { messageAad, packMessage } from './sealed-message.js';

function keyed(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

/**
 * A fresh message key wrapped under the conversation key, and the message sealed under it.
 * `fresh` is this message's FRESH_BYTES_PER_MESSAGE of the batch's draw: key, wrap IV, seal IV.
 */
function sealOne(job: CheckBatch['jobs'][number], ck: KeyObject, fresh: Buffer): SealedMessage {
  const { raw, wrapped } = createWrappedKeySync(ck, dekAad(job.id), fresh.subarray(0, DATA_KEY_BYTES + IV_BYTES));
  try {
    return { wrapped, blob: sealSync(raw, packMessage(job.header, job.signature, job.body), messageAad(job.id), fresh.subarray(DATA_KEY_BYTES + IV_BYTES)) };
  } finally {
    raw.fill(0);
  }
}

function checkOne(key: Buffer, job: CheckBatch['jobs'][number], fresh: Buffer): CheckResult {
  const bodySha384 = createHash('sha384').update(job.body).digest('base64');
  const subject = keyed(key, subjectInput(job.id));
  let signer;
  try {
    signer = cachedCertificate(Buffer.from(job.signerDer));
  } catch {
    return { ok: false, reason: 'signer-not-found', detail: 'the session certificate cannot be read', bodySha384, subject };
  }
  const r = verifyDetachedSync(job.signature, job.header, { expectedSigner: signer });
  if (!r.ok) return { ok: false, reason: r.reason, detail: r.detail, bodySha384, subject };
  return {
    ok: true,
    ...(r.label !== undefined ? { label: r.label } : {}),
    ...(r.signingTime !== undefined ? { signingTime: r.signingTime.getTime() } : {}),
    contentDigest: r.contentDigest,
    bodySha384,
    subject,
    headerHash: keyed(key, headerHashInput(r.contentDigest)),
    ...(job.sealWith ? { sealed: sealOne(job, KeyObject.from(job.sealWith), fresh) } : {}),
  };
}

parentPort!.on('message', (batch: CheckBatch) => {
  const key = Buffer.from(batch.key);
  // One CSPRNG draw for the whole batch's message keys and IVs, zeroed once the batch is sealed.
  const fresh = randomFillSync(Buffer.alloc(batch.jobs.length * FRESH_BYTES_PER_MESSAGE));
  const results = batch.jobs.map((job, i): CheckResult | { error: string } => {
    try {
      return checkOne(key, job, fresh.subarray(i * FRESH_BYTES_PER_MESSAGE, (i + 1) * FRESH_BYTES_PER_MESSAGE));
    } catch (e) {
      // verifyDetachedSync never throws on bad input: anything here is a defect, failed per message.
      return { error: e instanceof Error ? e.message : String(e) };
    }
  });
  fresh.fill(0);
  parentPort!.postMessage({ id: batch.id, results });
});
