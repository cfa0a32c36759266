/**
 * Failure modes of CMS signing and inspection (cms-sign.ts, cms-inspect.ts). Verification never
 * throws: it answers `{ ok: false, reason }`; these errors are for the operations that cannot answer
 * that way — making a signature, and inspecting one without verifying it. Each carries a stable
 * `code` and the `cause`.
 */
import { PkiError } from './errors.js';

/** The signing key and the signer certificate hold different kinds of key (e.g. a P-256 key, a P-384 certificate). */
export class SignerKeyMismatchError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CMS_SIGNER_KEY_MISMATCH', message, options);
  }
}

/** Bytes that are not a detached CMS SignedData Sigil can read (garbage, truncated, wrong content type). */
export class MalformedCmsError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CMS_MALFORMED', message, options);
  }
}
