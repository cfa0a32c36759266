/**
 * Failure modes of the messaging commands (send, read, watch, download, delete, group, verify,
 * export). Each has a stable `code`; `client-cli/exit-codes.ts` maps the verification ones to 3.
 */
import { CliError } from '../errors.js';

/** A message did not verify locally (signature, chain, CRL, digest, label or sender). */
export class MessageUnverifiedError extends CliError {
  constructor(message: string) {
    super('MESSAGE_UNVERIFIED', message);
  }
}

/** A downloaded file's SHA-384 or size differs from what the verified header says. */
export class DownloadMismatchError extends CliError {
  constructor(file: string, detail: string) {
    super('DOWNLOAD_MISMATCH', `download of ${file} does not match the signed header (${detail}); the partial file was deleted`);
  }
}

/** An output path exists and `--force` was not given: content is never silently overwritten. */
export class OutputExistsError extends CliError {
  constructor(path: string) {
    super('OUTPUT_EXISTS', `${path} already exists; add --force to overwrite it`);
  }
}

/** The message names no attachment of that name (or has several and none was chosen). */
export class AttachmentChoiceError extends CliError {
  constructor(detail: string) {
    super('ATTACHMENT_CHOICE', detail);
  }
}

/** A recipient is neither a login nor `#group`. */
export class RecipientInvalidError extends CliError {
  constructor(text: string) {
    super('USAGE', `recipient "${text.slice(0, 70)}" is neither a login nor #group`);
  }
}

/** The live event stream broke in a way a reconnect cannot fix (or too many reconnects failed). */
export class StreamFailedError extends CliError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('STREAM_FAILED', `live event stream failed: ${detail}`, options);
  }
}

/** An upload's server-side digest or size differs from what was read from disk. */
export class UploadMismatchError extends CliError {
  constructor(file: string, detail: string) {
    super('UPLOAD_MISMATCH', `upload of ${file} was stored differently than read (${detail})`);
  }
}

/** A send stopped by a signal while its files were uploading: no message went, the uploads were given back. */
export class SendInterruptedError extends CliError {
  constructor(why: string) {
    super('SEND_INTERRUPTED', `send interrupted (${why}); no message was sent and the files uploaded for it were discarded`);
  }
}
