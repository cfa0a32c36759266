/**
 * The cap on one person's pending uploads (`maxPendingUploads` files, `maxPendingUploadBytes`
 * bytes). A pending upload is visible to its uploader alone and lives until a message names it or
 * the sweep takes it after `pendingFileTtlMs`; without a cap one member could fill the vault with
 * them and nobody else could free the space (the reviewer's 96 MiB disk: 22 uploads of 4 MiB, then
 * every write, deletions too, answered VAULT_FULL).
 *
 * What counts: every `pending` row of the uploader, an upload still streaming in too. Its row
 * holds, until it completes, the bytes it reserved — its announced length, or without one what
 * remained of the cap (so it may stream up to that) — and then its real size.
 *
 * Why nothing overshoots: the file row is inserted by one statement that re-counts and reserves
 * (`insertPendingRow`), and statements on vault.db's one writer connection run one at a time. The
 * read-only check before it (`checkRoom`) is what lets a refusal come before the file key is made;
 * that check must not be made stale by the same person's concurrent upload (other writers only
 * ever lower the count): `Ctx.uploadAdmissions` runs check → key → insert one upload at a time per
 * uploader.
 */
import type { Db } from '../vault/index.js';
import { TooManyPendingUploadsError } from './errors.js';
import type { MessagingConfig } from './ports.js';

/** The uploader's pending files and the bytes they hold or reserved. */
const USAGE = `SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM msg_files WHERE uploader = ? AND state = 'pending'`;

interface Usage {
  files: number;
  bytes: number;
}

type Caps = Pick<MessagingConfig, 'maxPendingUploads' | 'maxPendingUploadBytes' | 'pendingFileTtlMs'>;

/** An upload without a length needs one byte of room at least; an announced length needs all of it. */
const need = (length: number | undefined): number => length ?? 1;

/** The refusal for `usage` plus an upload of `length`, or undefined when it fits. */
function refusal(cfg: Caps, usage: Usage, length: number | undefined): TooManyPendingUploadsError | undefined {
  const wait = `attach them to a message, or wait: an unattached upload is destroyed ${Math.round(cfg.pendingFileTtlMs / 60_000)} min after it was made`;
  if (usage.files >= cfg.maxPendingUploads) {
    return new TooManyPendingUploadsError(`you have ${usage.files} uploads not attached to any message; the limit is ${cfg.maxPendingUploads}: ${wait}`);
  }
  if (usage.bytes + need(length) > cfg.maxPendingUploadBytes) {
    const asked = length === undefined ? 'more' : `${length} more`;
    return new TooManyPendingUploadsError(
      `your uploads not attached to any message hold ${usage.bytes} bytes; ${asked} would pass the limit of ${cfg.maxPendingUploadBytes}: ${wait}`,
    );
  }
  return undefined;
}

/**
 * Refuses an upload of `length` bytes (undefined: not announced) that does not fit beside the
 * uploader's pending ones. Read-only: call it before anything of the upload is made.
 * @throws TooManyPendingUploadsError
 */
export async function checkRoom(db: Db, cfg: Caps, login: string, length: number | undefined): Promise<void> {
  const usage = (await db.get<Usage>(USAGE, [login])) ?? { files: 0, bytes: 0 };
  const r = refusal(cfg, usage, length);
  if (r) throw r;
}

/** What {@link insertPendingRow} answers. */
export type InsertOutcome = { ok: true; reserved: number } | { ok: false; error?: TooManyPendingUploadsError };

/**
 * Inserts the upload's pending row if its conversation exists and it fits, counting and reserving
 * in the same statement. `reserved` is how many bytes the upload may stream. `{ok: false}` without
 * `error`: the conversation is gone.
 */
export async function insertPendingRow(
  db: Db,
  cfg: Caps & Pick<MessagingConfig, 'maxFileBytes'>,
  row: { id: string; conversation: string; uploader: string; at: string; length: number | undefined },
): Promise<InsertOutcome> {
  const len = row.length ?? null;
  const inserted = await db.all<{ size: number }>(
    `INSERT INTO msg_files (id, conversation, uploader, state, size, sha384, chunk_count, created_at)
     SELECT ?, ?, ?, 'pending', coalesce(?, min(?, ? - u.bytes)), '', 0, ?
       FROM (${USAGE}) AS u
      WHERE EXISTS (SELECT 1 FROM msg_conversations WHERE id = ?) AND u.files < ? AND u.bytes + ? <= ?
     RETURNING size`,
    [row.id, row.conversation, row.uploader, len, cfg.maxFileBytes, cfg.maxPendingUploadBytes, row.at, row.uploader,
      row.conversation, cfg.maxPendingUploads, need(row.length), cfg.maxPendingUploadBytes],
  );
  if (inserted[0]) return { ok: true, reserved: inserted[0].size };
  // Refused: say why (the conversation's absence is the caller's to explain).
  const usage = (await db.get<Usage>(USAGE, [row.uploader])) ?? { files: 0, bytes: 0 };
  const error = refusal(cfg, usage, row.length);
  return error ? { ok: false, error } : { ok: false };
}
