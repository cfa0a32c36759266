/**
 * The messages between check-pool.ts (main thread) and check-worker.ts (worker threads). Plain
 * data only: structured clone copies it, so nothing here may be a class instance — except a
 * CryptoKey, which Node clones into the worker as the same key (non-extractable stays so).
 */
import type { CryptoKey } from '../vault/crypto-types.js';

/**
 * What the keyed hashes of a message are taken over (HMAC-SHA-256 under `audit-hmac`): its id (the
 * audit subject and replay-guard key) and its signed header's digest (links the audit entry to the
 * signature, content-free). The one definition for the worker, the in-thread checker and the rest
 * of messaging. Plain functions, no imports: the worker loads this module too.
 */
export const subjectInput = (id: string): string => `message:${id}`;
export const headerHashInput = (digest: Uint8Array): string => `header:${Buffer.from(digest).toString('base64')}`;

/** Where a job's bytes lie in its batch's `data`, or a result's in its reply's: `[offset, length]`. */
export type Span = readonly [offset: number, length: number];

/**
 * One batch of messages to check, with the keyed-hash secret they are hashed under.
 *
 * Laid out for the crossing between isolates: every job's signature, header and body lie back to
 * back in one `data` buffer that is transferred, not copied, and the batch's distinct signer
 * certificates and conversation keys travel once each. Per message nothing crosses but a few
 * numbers and its id: each separate buffer would be one more allocation on both sides and more
 * work for V8's array-buffer sweeper, per message, on a path that carries thousands a second.
 */
export interface CheckBatch {
  id: number;
  /** The raw `audit-hmac` secret (HMAC-SHA-256). */
  key: Uint8Array;
  /** Every job's signature, header and body (transferred to the worker). */
  data: Uint8Array<ArrayBuffer>;
  /** DER of the batch's distinct signer certificates (each job's session certificate). */
  signers: Uint8Array[];
  /**
   * The batch's distinct conversation keys. A job with one (`sealWith` ≥ 0) that verifies is also
   * sealed for the vault: a fresh message key wrapped under it, and the message sealed under that key.
   */
  sealKeys: CryptoKey[];
  jobs: {
    id: string;
    signature: Span;
    header: Span;
    body: Span;
    /** Index into `signers`: the certificate the signature must be from. */
    signer: number;
    /** Index into `sealKeys`, or -1: check only. */
    sealWith: number;
  }[];
}

/** A worker's answer: results in job order, `{ error }` where checking failed for a defect; byte fields lie in `data` (transferred back). */
export interface CheckReply {
  id: number;
  data: Uint8Array<ArrayBuffer>;
  results: (WireResult | { error: string })[];
}

/** A message sealed for the vault, with its message key wrapped under the conversation key. */
export interface SealedMessage {
  wrapped: Uint8Array;
  blob: Uint8Array;
}

/** The outcome for one message: the signature check flattened, plus digests and keyed hashes. */
export type CheckResult =
  | {
      ok: true;
      label?: string;
      /** signingTime in ms since the epoch */
      signingTime?: number;
      contentDigest: Uint8Array;
      bodySha384: string;
      subject: string;
      headerHash: string;
      /** With `sealWith`: the wrapped message key (AAD `dek:<id>`) and the sealed message (AAD `sigil-msg:<id>`). */
      sealed?: SealedMessage;
    }
  | { ok: false; reason: string; detail: string; bodySha384: string; subject: string };

/** {@link CheckResult} as it crosses back: its byte fields as spans of the reply's `data`. */
export type WireResult =
  | (Omit<Extract<CheckResult, { ok: true }>, 'contentDigest' | 'sealed'> & { contentDigest: Span; sealed?: { wrapped: Span; blob: Span } })
  | Extract<CheckResult, { ok: false }>;
