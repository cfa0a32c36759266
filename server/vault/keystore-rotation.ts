/**
 * The conversation keys' part of a master-key rotation (keystore.ts): which CKs open under which
 * master key, and re-wrapping them under the new one. DEKs are wrapped under CKs, which do not
 * change, so they are untouched.
 */
import type { Db } from './db.js';
import { ckAad } from './key-wrap.js';
import { rewrapOrSkip, sealedUnder, type KeyCensus } from './keyring.js';
import type { MasterKey } from './master-key.js';

/**
 * {@link Keystore.census}: how many CKs open under the current master key (`current()`, read as
 * each is tried), how many only under `next`, and which under neither.
 */
export async function conversationKeyCensus(keysDb: Db, current: () => MasterKey, next?: MasterKey): Promise<KeyCensus> {
  const rows = await keysDb.all<{ conv_id: string; wrapped: Uint8Array }>('SELECT conv_id, wrapped FROM conversation_keys ORDER BY conv_id');
  const census: KeyCensus = { current: 0, next: 0, unreadable: [] };
  for (const r of rows) {
    const under = await sealedUnder(current(), next, r.wrapped, ckAad(r.conv_id));
    if (under) census[under]++;
    else census.unreadable.push(r.conv_id);
  }
  return census;
}

/**
 * Re-wraps every CK from the current master key (`current()`, read as each is re-wrapped) to
 * `next` in one transaction, skipping those already under `next` (a resumed rotation).
 * @returns the number of conversation keys re-wrapped.
 */
export function rewrapConversationKeys(keysDb: Db, current: () => MasterKey, next: MasterKey): Promise<number> {
  return keysDb.transaction(async (tx) => {
    const rows = await tx.all<{ conv_id: string; wrapped: Uint8Array }>('SELECT conv_id, wrapped FROM conversation_keys');
    const upd = await tx.prepare('UPDATE conversation_keys SET wrapped = ? WHERE conv_id = ?');
    let changed = 0;
    try {
      for (const r of rows) {
        const rewrapped = await rewrapOrSkip(current(), next, r.wrapped, ckAad(r.conv_id));
        if (rewrapped) {
          await upd.run([rewrapped, r.conv_id]);
          changed++;
        }
      }
    } finally {
      await upd.finalize();
    }
    return changed;
  });
}
