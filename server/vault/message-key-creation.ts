/**
 * Making message keys DEK for a batch of messages across conversations (keystore.ts): the crypto
 * first, under each conversation's CK, then one insert of every wrapped key, then the keys that
 * were stored kept in the cache.
 */
import { KeyExistsError, KeyNotFoundError } from './errors.js';
import { createWrappedKey, dekAad } from './key-wrap.js';
import type { KeyCache } from './key-cache.js';
import type { WrappedKeyRow } from './message-key-rows.js';
import type { CryptoKey } from './crypto-types.js';
import type { RandomBytes } from './aead.js';

/** What {@link createMessageKeysMany} needs of the Keystore. */
export interface MessageKeyMaker {
  /** The conversation's CK (cached). @throws KeyNotFoundError */
  conversationKey(convId: string): Promise<CryptoKey>;
  /** Stores wrapped keys: {@link Keystore.storeWrappedKeys}. */
  storeWrappedKeys(rows: readonly WrappedKeyRow[]): Promise<Set<string>>;
  /** Key material source. */
  random: RandomBytes;
  /** Where the new DEKs are kept. */
  cache: KeyCache;
}

/**
 * {@link Keystore.createMessageKeysMany}: one DEK per message id, for several conversations in
 * ONE keys.db transaction (the batching writer's path: a batch spans many conversations, and a
 * transaction per conversation made keys.db the message path's bottleneck). A conversation whose
 * key is missing (destroyed meanwhile) gets a KeyNotFoundError in the result and stores nothing;
 * the others proceed.
 * @throws KeyExistsError when any id already has a key (nothing of the batch is stored).
 */
export async function createMessageKeysMany(
  maker: MessageKeyMaker,
  batches: readonly { convId: string; msgIds: readonly string[] }[],
): Promise<Map<string, Map<string, CryptoKey> | KeyNotFoundError>> {
  const out = new Map<string, Map<string, CryptoKey> | KeyNotFoundError>();
  const all = batches.flatMap((b) => b.msgIds);
  if (new Set(all).size !== all.length) throw new KeyExistsError('duplicate message ids in one batch');
  // Crypto before the insert, so the write lock is held only for the insert.
  const made = await Promise.all(
    batches.map(async (b) => {
      try {
        const ck = await maker.conversationKey(b.convId);
        return { b, keys: await Promise.all(b.msgIds.map((id) => createWrappedKey(ck, dekAad(id), maker.random))) };
      } catch (err) {
        if (err instanceof KeyNotFoundError) return { b, missing: err };
        throw err;
      }
    }),
  );
  const rows: { convId: string; msgId: string; wrapped: Uint8Array }[] = [];
  for (const m of made) {
    if ('missing' in m) out.set(m.b.convId, m.missing!);
    else m.b.msgIds.forEach((msgId, j) => rows.push({ convId: m.b.convId, msgId, wrapped: m.keys![j]!.wrapped }));
  }
  const live = await maker.storeWrappedKeys(rows);
  const stored: { b: (typeof batches)[number]; keys: Awaited<ReturnType<typeof createWrappedKey>>[] }[] = [];
  for (const m of made) {
    if ('missing' in m) continue;
    if (live.has(m.b.convId)) stored.push({ b: m.b, keys: m.keys! });
    else out.set(m.b.convId, new KeyNotFoundError(`conversation ${m.b.convId} has no key (destroyed meanwhile)`));
  }
  for (const { b, keys } of stored) {
    const map = new Map<string, CryptoKey>();
    b.msgIds.forEach((id, i) => {
      const key = keys[i]!.key;
      map.set(id, key);
      maker.cache.deks.set(id, { convId: b.convId, key });
    });
    out.set(b.convId, map);
  }
  return out;
}
