/**
 * Worker-thread side of check-pool.ts: verifies batches of messages with synchronous node:crypto
 * (pki's verifyDetachedSync), hashes their bodies, computes their keyed hashes and, given the
 * conversation key, seals each message that verified under a fresh message key. Synchronous
 * crypto is right here and only here: this thread has nothing else to do, and one message costs it
 * one verify plus a few microseconds, where WebCrypto would cost the main thread ~10 job hops.
 */
import { createHmac, createHash, KeyObject } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { verifyDetachedSync } from '../../pki/cms-verify-sync.js';
import { cachedCertificate } from '../../pki/cms-signers.js';
import { createWrappedKeySync, sealSync } from '../vault/seal-sync.js';
import { dekAad } from '../vault/key-wrap.js';
import { headerHashInput, subjectInput, type CheckBatch, type CheckResult, type SealedMessage } from './check-protocol.js';
import { messageAad, packMessage } from './sealed-message.js';

function keyed(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

/** A fresh message key wrapped under the conversation key, and the message sealed under it. */
function sealOne(job: CheckBatch['jobs'][number], ck: KeyObject): SealedMessage {
  const { raw, wrapped } = createWrappedKeySync(ck, dekAad(job.id));
  try {
    return { wrapped, blob: sealSync(raw, packMessage(job.header, job.signature, job.body), messageAad(job.id)) };
  } finally {
    raw.fill(0);
  }
}

function checkOne(key: Buffer, job: CheckBatch['jobs'][number]): CheckResult {
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
    ...(job.sealWith ? { sealed: sealOne(job, KeyObject.from(job.sealWith)) } : {}),
  };
}

parentPort!.on('message', (batch: CheckBatch) => {
  const key = Buffer.from(batch.key);
  const results = batch.jobs.map((job): CheckResult | { error: string } => {
    try {
      return checkOne(key, job);
    } catch (e) {
      // verifyDetachedSync never throws on bad input: anything here is a defect, failed per message.
      return { error: e instanceof Error ? e.message : String(e) };
    }
  });
  parentPort!.postMessage({ id: batch.id, results });
});
