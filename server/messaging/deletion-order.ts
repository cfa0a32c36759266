/**
 * The order every deletion runs in (issue 4, "Irreversible deletion"; ARCHITECTURE.md, "write
 * order keeps crashes harmless"): rows and tombstone in one vault transaction, then the keys, then
 * WAL truncation ({@link rowsThenKeys}), with a full disk met through the reserve and what fails
 * after the commit left to late destruction; then the live `deleted` events ({@link announce}).
 */
import type { Ctx } from './context.js';
import type { KeysToDestroy } from './ports.js';
import type { DbTx } from '../vault/index.js';
import { errorFields } from '../log.js';

/**
 * Live `deleted` events, once the deletion committed. A failure here (a membership read) is
 * logged, never answered: the deletion stands and is recorded, and readers catch up from the vault.
 */
export async function announce(ctx: Ctx, publish: () => Promise<void> | void): Promise<void> {
  try {
    await publish();
  } catch (err) {
    ctx.log('messaging.deleted-event-failed', errorFields(err));
  }
}

/**
 * Rows, then keys, then WAL truncation, with both databases working at once where the write order
 * allows it (ARCHITECTURE.md, "write order keeps crashes harmless"):
 *
 * 1. `rows` runs in one vault transaction — the rows and their tombstone (`appendTombstone`,
 *    deletion-record.ts) — and calls `keysGo` (once) with the keys that must follow.
 *    The key store starts deleting them right away in its own keys.db transaction, which commits
 *    only after the vault transaction did (and rolls back if it failed): keys never go before rows.
 *    keysGo is only ever called from inside the vault transaction, and the vault transaction never
 *    waits for the key store, so the two locks cannot deadlock. A failure up to the commit is
 *    thrown: nothing was written (no row, no tombstone, no key).
 * 2. Once the rows committed: keys.db commits and truncates its WAL while vault.db truncates its own.
 *    Both are awaited, so nothing is left running behind the answer; a failure here is logged, not
 *    thrown (see below).
 *
 * `committed` runs right after the vault commit, before the keys are waited for (cache invalidation:
 * reads outside a transaction see only committed rows, so earlier would be undone by a reload).
 */
export async function rowsThenKeys<T>(
  ctx: Ctx,
  rows: (tx: DbTx, keysGo: (k: KeysToDestroy) => void) => Promise<T>,
  committed: (out: T) => void = () => undefined,
): Promise<T> {
  // On a full disk the reserve is released and the whole of it runs once more: it throws only
  // when nothing was written (a failure after the commit is finished below, not thrown).
  return ctx.room.freeing(() => rowsThenKeysOnce(ctx, rows, committed));
}

async function rowsThenKeysOnce<T>(
  ctx: Ctx,
  rows: (tx: DbTx, keysGo: (k: KeysToDestroy) => void) => Promise<T>,
  committed: (out: T) => void,
): Promise<T> {
  let settle!: { resolve: () => void; reject: (err: unknown) => void };
  const rowsGone = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  rowsGone.catch(() => undefined);
  let staged: Promise<unknown> | undefined;
  let destroying: KeysToDestroy | undefined;
  const keysGo = (k: KeysToDestroy): void => {
    if (staged) throw new Error('rowsThenKeys: keysGo called twice');
    destroying = k;
    staged = ctx.keys.destroyKeysAfter(k, rowsGone);
    staged.catch(() => undefined);
  };
  let out: T;
  try {
    out = await ctx.db.transaction((tx) => rows(tx, keysGo));
  } catch (err) {
    settle.reject(err);
    await staged?.catch(() => undefined); // rolled back: wait until keys.db is free again
    throw err;
  }
  settle.resolve();
  committed(out);
  let [k, w] = await Promise.allSettled([staged, ctx.db.checkpointTruncate()]);
  // keys.db or the checkpoint may meet the full disk when the rows did not: once more through the
  // reserve now, so that the content is gone when the deletion answers, not a retry later.
  if (k.status === 'rejected' && destroying) {
    const what = destroying;
    [k] = await Promise.allSettled([ctx.room.afterFull(k.reason, () => ctx.keys.destroyKeysAfter(what, Promise.resolve()))]);
  }
  if (w.status === 'rejected') [w] = await Promise.allSettled([ctx.room.afterFull(w.reason, () => ctx.db.checkpointTruncate())]);

  if (k.status === 'rejected' && destroying) ctx.late.keys(destroying);
  if (w.status === 'rejected') ctx.late.checkpoint();
  // The deletion is committed with its tombstone, so the caller answers the tombstone even if a
  // step after the commit failed: the rows every reader reaches are gone and the audit trail says
  // so. An error would be untrue (VAULT_FULL answers "nothing was written") and a retry could not
  // help (it finds nothing to delete). What such a failure leaves is finished without the client:
  // the keys (whose keys.db transaction rolled back, so they open no row) and the checkpoint are
  // retried in the background until they succeed (late-destruction.ts); should the appliance stop
  // first, its start destroys every key without a row (reconcileKeys, sweepOrphanConversations)
  // and truncates the WAL.
  for (const r of [k, w]) if (r.status === 'rejected') ctx.log('messaging.deletion-after-commit-failed', errorFields(r.reason));
  return out;
}
