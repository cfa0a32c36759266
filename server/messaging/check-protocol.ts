/**
 * The messages between check-pool.ts (main thread) and check-worker.ts (worker threads). Plain
 * data only: structured clone copies it, so nothing here may be a class instance.
 */

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
  }[];
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
    }
  | { ok: false; reason: string; detail: string; bodySha384: string; subject: string };

/** A worker's answer: results in job order; `{ error }` where checking failed for a defect. */
export interface CheckReply {
  id: number;
  results: (CheckResult | { error: string })[];
}
