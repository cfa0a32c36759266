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
import { headerHashInput, subjectInput, type CheckBatch, type CheckReply, type Span, type WireResult } from './check-protocol.js';
import type { Certificate } from '../../pki/certificate.js';
import { messageAad, packMessage } from './sealed-message.js';

function keyed(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

/** The reply's byte fields as they are made, copied into one transferable buffer at the end. */
class ReplyBytes {
  readonly #parts: Uint8Array[] = [];
  #length = 0;

  /** Appends `bytes`; returns where they will lie in {@link take}'s buffer. */
  add(bytes: Uint8Array): Span {
    const at = this.#length;
    this.#parts.push(bytes);
    this.#length += bytes.length;
    return [at, bytes.length];
  }

  /** One buffer that owns its memory (never a view of Node's pool: it is transferred). */
  take(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

type Job = CheckBatch['jobs'][number];

const view = (data: Uint8Array, [offset, length]: Span): Uint8Array => data.subarray(offset, offset + length);

/**
 * A fresh message key wrapped under the conversation key, and the message sealed under it.
 * `fresh` is this message's FRESH_BYTES_PER_MESSAGE of the batch's draw: key, wrap IV, seal IV.
 */
function sealOne(id: string, header: Uint8Array, signature: Uint8Array, body: Uint8Array, ck: KeyObject, fresh: Buffer, out: ReplyBytes): { wrapped: Span; blob: Span } {
  const { raw, wrapped } = createWrappedKeySync(ck, dekAad(id), fresh.subarray(0, DATA_KEY_BYTES + IV_BYTES));
  try {
    const blob = sealSync(raw, packMessage(header, signature, body), messageAad(id), fresh.subarray(DATA_KEY_BYTES + IV_BYTES));
    return { wrapped: out.add(wrapped), blob: out.add(blob) };
  } finally {
    raw.fill(0);
  }
}

function checkOne(key: Buffer, batch: CheckBatch, signers: (Certificate | undefined)[], sealKeys: KeyObject[], job: Job, fresh: Buffer, out: ReplyBytes): WireResult {
  const signature = view(batch.data, job.signature);
  const header = view(batch.data, job.header);
  const body = view(batch.data, job.body);
  const bodySha384 = createHash('sha384').update(body).digest('base64');
  const subject = keyed(key, subjectInput(job.id));
  const signer = signers[job.signer];
  if (!signer) return { ok: false, reason: 'signer-not-found', detail: 'the session certificate cannot be read', bodySha384, subject };
  const r = verifyDetachedSync(signature, header, { expectedSigner: signer });
  if (!r.ok) return { ok: false, reason: r.reason, detail: r.detail, bodySha384, subject };
  const ck = job.sealWith >= 0 ? sealKeys[job.sealWith] : undefined;
  return {
    ok: true,
    ...(r.label !== undefined ? { label: r.label } : {}),
    ...(r.signingTime !== undefined ? { signingTime: r.signingTime.getTime() } : {}),
    contentDigest: out.add(r.contentDigest),
    bodySha384,
    subject,
    headerHash: keyed(key, headerHashInput(r.contentDigest)),
    ...(ck ? { sealed: sealOne(job.id, header, signature, body, ck, fresh, out) } : {}),
  };
}

parentPort!.on('message', (batch: CheckBatch) => {
  const key = Buffer.from(batch.key);
  const signers = batch.signers.map((der) => {
    try {
      return cachedCertificate(Buffer.from(der));
    } catch {
      return undefined;
    }
  });
  const sealKeys = batch.sealKeys.map((k) => KeyObject.from(k));
  // One CSPRNG draw for the whole batch's message keys and IVs, zeroed once the batch is sealed.
  const fresh = randomFillSync(Buffer.alloc(batch.jobs.length * FRESH_BYTES_PER_MESSAGE));
  const out = new ReplyBytes();
  const results = batch.jobs.map((job, i): WireResult | { error: string } => {
    try {
      return checkOne(key, batch, signers, sealKeys, job, fresh.subarray(i * FRESH_BYTES_PER_MESSAGE, (i + 1) * FRESH_BYTES_PER_MESSAGE), out);
    } catch (e) {
      // verifyDetachedSync never throws on bad input: anything here is a defect, failed per message.
      return { error: e instanceof Error ? e.message : String(e) };
    }
  });
  fresh.fill(0);
  // The batch's plaintext is not kept a moment longer than needed in this isolate.
  batch.data.fill(0);
  const reply: CheckReply = { id: batch.id, data: out.take(), results };
  parentPort!.postMessage(reply, [reply.data.buffer]);
});
