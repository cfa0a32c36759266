/**
 * Destroying keys in `keys.db` (keystore.ts): what a destroy names, what it destroyed, and each
 * destroy — by message id, by conversation, or both at once in a transaction that commits only
 * after the rows' commit — and the sweeps of keys left without their rows. Each destroy forgets
 * the cached keys first and truncates the WAL last, so no old page image of a deleted key
 * survives there.
 */
import type { Db } from './db.js';
import type { Keystore } from './keystore.js';
import type { KeyCache } from './key-cache.js';
import { chunks, IN_CHUNK, marks } from './sql-lists.js';

/** Which keys {@link Keystore.destroyKeysAfter} destroys. */
export interface KeyDestruction {
  /** Message (and file) key ids. Default none. */
  messageIds?: readonly string[];
  /** Conversations whose CK and every DEK under it go. Default none. */
  conversationIds?: readonly string[];
}

/** What {@link Keystore.destroyKeysAfter} destroyed. */
export interface DestroyedKeys {
  /** Message keys that existed and are gone (named ones and those under the conversations). */
  messageKeys: number;
  /** Conversation keys that existed and are gone. */
  conversationKeys: number;
}

/** {@link Keystore.destroyMessageKeys}: the DEKs of `msgIds`, in one transaction, then the WAL truncated. */
export async function destroyMessageKeys(keysDb: Db, cache: KeyCache, msgIds: readonly string[]): Promise<number> {
  cache.forget(msgIds);
  let n = 0;
  if (msgIds.length > 0) {
    n = await keysDb.transaction(async (tx) => {
      let changes = 0;
      for (const chunk of chunks(msgIds, IN_CHUNK)) {
        const r = await tx.run(`DELETE FROM message_keys WHERE msg_id IN (${marks(chunk.length)})`, chunk);
        changes += r.changes;
      }
      return changes;
    });
  }
  await keysDb.checkpointTruncate();
  return n;
}

/** {@link Keystore.destroyConversation}: its CK and every DEK under it, in one transaction, then the WAL truncated. */
export async function destroyConversation(keysDb: Db, cache: KeyCache, convId: string): Promise<{ messageKeys: number; conversationKey: boolean }> {
  cache.forget([], new Set([convId]));
  const r = await keysDb.transaction(async (tx) => {
    const m = await tx.run('DELETE FROM message_keys WHERE conv_id = ?', [convId]);
    const c = await tx.run('DELETE FROM conversation_keys WHERE conv_id = ?', [convId]);
    return { messageKeys: m.changes, conversationKey: c.changes > 0 };
  });
  await keysDb.checkpointTruncate();
  return r;
}

/**
 * {@link Keystore.destroyKeysAfter} (its TSDoc says when to call it): the deletes run at once,
 * in one keys.db transaction that commits only after `rowsGone` resolves and rolls back if it
 * rejects (nothing destroyed, that error thrown); then the WAL is truncated. Cached keys are
 * forgotten before the transaction is queued, so no unwrap can refill them.
 */
export async function destroyKeysAfter(
  keysDb: Db,
  cache: KeyCache,
  what: KeyDestruction,
  rowsGone: Promise<unknown>,
): Promise<DestroyedKeys> {
  const msgIds = what.messageIds ?? [];
  const convIds = new Set(what.conversationIds ?? []);
  // Observed at once, so a rejection while the deletes run is never unhandled.
  const rows = rowsGone.then(
    () => ({ ok: true as const }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  cache.forget(msgIds, convIds);
  const abort = new Error('destroyKeysAfter: the rows were not deleted');
  let counts: DestroyedKeys;
  try {
    counts = await keysDb.transaction(async (tx) => {
      const c = { messageKeys: 0, conversationKeys: 0 };
      for (const chunk of chunks([...convIds], IN_CHUNK)) {
        const q = marks(chunk.length);
        c.messageKeys += (await tx.run(`DELETE FROM message_keys WHERE conv_id IN (${q})`, chunk)).changes;
        c.conversationKeys += (await tx.run(`DELETE FROM conversation_keys WHERE conv_id IN (${q})`, chunk)).changes;
      }
      for (const chunk of chunks(msgIds, IN_CHUNK)) {
        c.messageKeys += (await tx.run(`DELETE FROM message_keys WHERE msg_id IN (${marks(chunk.length)})`, chunk)).changes;
      }
      if (!(await rows).ok) throw abort;
      return c;
    });
  } catch (err) {
    const r = await rows;
    if (!r.ok) throw r.err;
    throw err;
  }
  await keysDb.checkpointTruncate();
  return counts;
}

/**
 * {@link Keystore.sweepOrphans}: destroys the message keys whose id is not in `existingMsgIds`,
 * through the keystore's own {@link Keystore.destroyMessageKeys}.
 */
export async function sweepOrphans(keys: Pick<Keystore, 'db' | 'destroyMessageKeys'>, existingMsgIds: Iterable<string>): Promise<string[]> {
  const keep = existingMsgIds instanceof Set ? (existingMsgIds as Set<string>) : new Set(existingMsgIds);
  const all = await keys.db.all<{ msg_id: string }>('SELECT msg_id FROM message_keys');
  const orphans = all.map((r) => r.msg_id).filter((id) => !keep.has(id));
  if (orphans.length > 0) await keys.destroyMessageKeys(orphans);
  return orphans;
}

/**
 * {@link Keystore.sweepOrphanConversations}: destroys the CKs (and message keys) of conversations
 * not in `existingConvIds` in one transaction, through the keystore's own
 * {@link Keystore.destroyKeysAfter}; then the WAL is truncated also when there is no orphan, since a
 * crash after a deletion's keys committed and before their WAL was truncated leaves no orphan
 * but the wrapped keys in keys.db-wal, which SQLite neither checkpoints nor truncates on open.
 */
export async function sweepOrphanConversations(
  keys: Pick<Keystore, 'db' | 'destroyKeysAfter'>,
  existingConvIds: Iterable<string>,
): Promise<string[]> {
  const keep = existingConvIds instanceof Set ? (existingConvIds as Set<string>) : new Set(existingConvIds);
  const all = await keys.db.all<{ conv_id: string }>('SELECT conv_id FROM conversation_keys');
  const orphans = all.map((r) => r.conv_id).filter((id) => !keep.has(id));
  if (orphans.length > 0) await keys.destroyKeysAfter({ conversationIds: orphans }, Promise.resolve());
  else await keys.db.checkpointTruncate();
  return orphans;
}
