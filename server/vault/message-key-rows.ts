/**
 * The message-key rows of `keys.db` (keystore.ts) that need no key material: storing keys
 * wrapped elsewhere, and where each key sits — its conversation and its order there — found,
 * listed and given. SQL only; the Keystore keeps the caches and the crypto.
 */
import type { Db } from './db.js';
import { chunks, IN_CHUNK, marks } from './sql-lists.js';
import { KeyExistsError, VaultConstraintError } from './errors.js';

/** A message key wrapped elsewhere, for {@link Keystore.storeWrappedKeys}. */
export interface WrappedKeyRow {
  convId: string;
  msgId: string;
  wrapped: Uint8Array;
  /** Where the key sits among its conversation's (the message's seq); default 0 (file keys). */
  order?: number;
}

/**
 * Where a message key sits in keys.db: its conversation and its order there, the message's seq
 * (0 for file keys, and for keys stored before keystore-2 until {@link Keystore.placeKeys}).
 */
export interface KeyPlace {
  msgId: string;
  convId: string;
  ord: number;
}

/**
 * Stores message keys wrapped under their conversation's CK elsewhere (a check worker, or
 * {@link Keystore.createMessageKeysMany}). Each row is inserted only if its conversation still has a key,
 * and RETURNING says which were: a batch that fits one statement needs no BEGIN/COMMIT (one
 * statement is one transaction), one thread-pool round trip on the message path instead of four.
 * Larger batches run in one transaction.
 *
 * @returns the conversations whose rows were stored (the others have no key: destroyed meanwhile)
 * @throws KeyExistsError when any id already has a key, or appears twice (nothing is stored)
 */
export async function storeWrappedKeys(keysDb: Db, rows: readonly WrappedKeyRow[]): Promise<Set<string>> {
  if (new Set(rows.map((r) => r.msgId)).size !== rows.length) throw new KeyExistsError('duplicate message ids in one batch');
  const live = new Set<string>();
  const insert = async (db: Pick<Db, 'all'>, part: readonly WrappedKeyRow[]): Promise<void> => {
    const returned = await db.all<{ conv_id: string }>(
      `INSERT INTO message_keys (msg_id, conv_id, ord, wrapped)
       SELECT v.column1, v.column2, v.column3, v.column4 FROM (VALUES ${marks(part.length, '(?, ?, ?, ?)')}) AS v
       WHERE EXISTS (SELECT 1 FROM conversation_keys c WHERE c.conv_id = v.column2)
       RETURNING conv_id`,
      part.flatMap((r) => [r.msgId, r.convId, r.order ?? 0, r.wrapped]),
    );
    for (const r of returned) live.add(r.conv_id);
  };
  try {
    if (rows.length <= IN_CHUNK) {
      if (rows.length) await insert(keysDb, rows);
    } else {
      await keysDb.transaction(async (tx) => {
        for (const part of chunks(rows, IN_CHUNK)) await insert(tx, part);
      });
    }
  } catch (err) {
    if (err instanceof VaultConstraintError) {
      throw new KeyExistsError(`a message id of this batch already has a key`, { cause: err });
    }
    throw err;
  }
  return live;
}

/**
 * Where each of `msgIds` that has a key sits (ids without one are absent), through the unique
 * id index. vault.db has no index on message ids: its lookups by id come here
 * (messaging/message-lookup.ts).
 */
export async function locateKeys(keysDb: Db, msgIds: readonly string[]): Promise<Map<string, KeyPlace>> {
  const out = new Map<string, KeyPlace>();
  for (const chunk of chunks([...new Set(msgIds)], IN_CHUNK)) {
    const rows = await keysDb.all<{ msg_id: string; conv_id: string; ord: number }>(
      `SELECT msg_id, conv_id, ord FROM message_keys WHERE msg_id IN (${marks(chunk.length)})`,
      chunk,
    );
    for (const r of rows) out.set(r.msg_id, { msgId: r.msg_id, convId: r.conv_id, ord: r.ord });
  }
  return out;
}

/** Every message and file key's place, in (conversation, order) order: for reconciling keys.db with vault.db at start. */
export async function listKeyPlaces(keysDb: Db): Promise<KeyPlace[]> {
  const rows = await keysDb.all<{ msg_id: string; conv_id: string; ord: number }>(
    'SELECT msg_id, conv_id, ord FROM message_keys ORDER BY conv_id, ord, msg_id',
  );
  return rows.map((r) => ({ msgId: r.msg_id, convId: r.conv_id, ord: r.ord }));
}

/**
 * Gives keys stored with order 0 (before keystore-2) their message's seq, in one transaction.
 * Keys that already have an order are left as they are.
 * @returns how many keys were placed.
 */
export async function placeKeys(keysDb: Db, places: readonly KeyPlace[]): Promise<number> {
  if (places.length === 0) return 0;
  // IN_CHUNK keys per statement: a million keys in 2,000 round trips, not a million.
  return keysDb.transaction(async (tx) => {
    let n = 0;
    for (const part of chunks(places, IN_CHUNK)) {
      const r = await tx.run(
        `UPDATE message_keys SET ord = v.column3 FROM (VALUES ${marks(part.length, '(?, ?, ?)')}) AS v
         WHERE message_keys.conv_id = v.column1 AND message_keys.ord = 0 AND message_keys.msg_id = v.column2`,
        part.flatMap((p) => [p.convId, p.msgId, p.ord]),
      );
      n += r.changes;
    }
    return n;
  });
}
