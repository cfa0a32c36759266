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

/** One batch of messages to check, with the keyed-hash secret they are hashed under. */
export interface CheckBatch {
  id: number;
  /** The raw `audit-hmac` secret (HMAC-SHA-256). */
  key: Uint8Array;
  jobs: {
    id: string;
    signature: Uint8Array;
    header: Uint8Array;
    body: Uint8Array;
    /** DER of the certificate the signature must be from (the session's). */
    signerDer: Uint8Array;
    /**
     * The conversation key: when given, a message that verifies is also sealed for the vault (a
     * fresh message key wrapped under it, and the message sealed under that key).
     */
    sealWith?: CryptoKey;
  }[];
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

/** A worker's answer: results in job order; `{ error }` where checking failed for a defect. */
export interface CheckReply {
  id: number;
  results: (CheckResult | { error: string })[];
}
