/**
 * The key store of destroyable keys, in its own file `keys.db` (ARCHITECTURE.md, key hierarchy):
 *
 * - a conversation key CK per conversation, wrapped under the master key, AAD `ck:<convId>`;
 * - a message key DEK per message, wrapped under its conversation's CK, AAD `dek:<msgId>`; the
 *   DEK encrypts that message's header, body, signature and file chunks in vault.db.
 *
 * Destroying a DEK (or a CK with every DEK under it) makes the ciphertext in vault.db, and in
 * every backup of vault.db, undecryptable. `keys.db` is never copied by a data backup: any copy
 * would be beyond a deletion's reach. Each destroy ends with `wal_checkpoint(TRUNCATE)` so no
 * old page image of a deleted key survives in the WAL; `secure_delete=ON` zeroes it in the file.
 *
 * Write order (the caller's job): keys are committed before the rows they open; on deletion,
 * rows go before keys. A crash in between leaves keys without rows: messaging's start destroys
 * them (`reconcileKeys`, through {@link keyPlaces}); a restore uses {@link sweepOrphans}, by id,
 * because a backup may have any older layout.
 */
import { Db, type DbOpenOptions, type MigrationHook } from './db.js';
import { KeyExistsError, KeyNotFoundError, VaultConstraintError } from './errors.js';
import { ckAad, dekAad, unwrapDataKey } from './key-wrap.js';
import type { KeyCensus } from './keyring.js';
import type { MasterKey } from './master-key.js';
import type { CryptoKey } from './crypto-types.js';
import { randomBytes, type RandomBytes } from './aead.js';
import { KeyCache } from './key-cache.js';
import { createMessageKeysMany } from './message-key-creation.js';
import { KEYSTORE_MIGRATIONS } from './keystore-schema.js';
import * as keyRows from './message-key-rows.js';
import type { KeyPlace, WrappedKeyRow } from './message-key-rows.js';
import * as destruction from './key-destruction.js';
import type { DestroyedKeys, KeyDestruction } from './key-destruction.js';
import { conversationKeyCensus, rewrapConversationKeys } from './keystore-rotation.js';

export { KEYSTORE_MIGRATIONS } from './keystore-schema.js';
export type { KeyPlace, WrappedKeyRow } from './message-key-rows.js';
export type { DestroyedKeys, KeyDestruction } from './key-destruction.js';
/** AADs of a wrapped conversation key and message key (defined in key-wrap.ts, which worker threads load). */
export { ckAad, dekAad };

/** Options of {@link Keystore.open}. */
export interface KeystoreOptions {
  /** Unwrapped message keys kept in memory. Default 10,000. */
  cacheSize?: number;
  /** Key material source; default CSPRNG. */
  random?: RandomBytes;
  /** Clock for `created_at`; default `new Date()`. */
  now?: () => Date;
  /** Hears of each keys.db migration applied at open (keystore-2 moves every key: seconds per million). */
  onMigration?: MigrationHook;
  /** Page cache and checkpoint interval of the keys.db connection (openVault sets the appliance's). */
  db?: Pick<DbOpenOptions, 'cacheKiB' | 'walAutocheckpointPages'>;
}

/** The destroyable keys. Create with {@link Keystore.open}. */
export class Keystore {
  /** The `keys.db` connection (exposed for tests and the facade; callers should not query it). */
  readonly db: Db;
  #mk: MasterKey;
  readonly #random: RandomBytes;
  readonly #now: () => Date;
  readonly #cache: KeyCache;

  private constructor(db: Db, mk: MasterKey, opts: KeystoreOptions) {
    this.db = db;
    this.#mk = mk;
    this.#random = opts.random ?? randomBytes;
    this.#now = opts.now ?? (() => new Date());
    this.#cache = new KeyCache(opts.cacheSize ?? 10_000);
  }

  /** Opens (creating) `keys.db` at `path` and its tables. */
  static async open(path: string, mk: MasterKey, opts: KeystoreOptions = {}): Promise<Keystore> {
    const db = await Db.open(path, opts.db ?? {});
    try {
      await db.migrate(KEYSTORE_MIGRATIONS, { onApply: opts.onMigration });
    } catch (err) {
      await db.close();
      throw err;
    }
    return new Keystore(db, mk, opts);
  }

  /**
   * Creates the conversation key CK of `convId`.
   * @throws KeyExistsError if the conversation already has one.
   */
  async createConversationKey(convId: string): Promise<void> {
    const { key, wrapped } = await this.#mk.wrapNewKey(ckAad(convId));
    try {
      await this.db.run('INSERT INTO conversation_keys (conv_id, wrapped, created_at) VALUES (?, ?, ?)', [
        convId,
        wrapped,
        this.#now().toISOString(),
      ]);
    } catch (err) {
      if (err instanceof VaultConstraintError) {
        throw new KeyExistsError(`conversation ${convId} already has a key`, { cause: err });
      }
      throw err;
    }
    this.#cache.cks.set(convId, key);
  }

  /** True if `convId` has a conversation key. */
  async hasConversationKey(convId: string): Promise<boolean> {
    return (await this.db.get('SELECT 1 AS x FROM conversation_keys WHERE conv_id = ?', [convId])) !== undefined;
  }

  /** The conversation's key (cached), e.g. to seal messages in a worker thread. @throws KeyNotFoundError */
  conversationKey(convId: string): Promise<CryptoKey> {
    return this.#conversationKey(convId);
  }

  /**
   * Stores message keys wrapped under their conversation's CK elsewhere (a check worker, or
   * {@link createMessageKeysMany}), each only if its conversation still has a key; how:
   * {@link keyRows.storeWrappedKeys}.
   * @returns the conversations whose rows were stored (the others have no key: destroyed meanwhile)
   * @throws KeyExistsError when any id already has a key, or appears twice (nothing is stored)
   */
  storeWrappedKeys(rows: readonly WrappedKeyRow[]): Promise<Set<string>> {
    return keyRows.storeWrappedKeys(this.db, rows);
  }

  async #conversationKey(convId: string): Promise<CryptoKey> {
    const cached = this.#cache.cks.get(convId);
    if (cached) return cached;
    const epoch = this.#cache.epoch;
    const row = await this.db.get<{ wrapped: Uint8Array }>('SELECT wrapped FROM conversation_keys WHERE conv_id = ?', [convId]);
    if (!row) throw new KeyNotFoundError(`conversation ${convId} has no key (never created, or destroyed)`);
    const ck = await this.#mk.unwrapKey(row.wrapped, ckAad(convId));
    if (epoch === this.#cache.epoch) this.#cache.cks.set(convId, ck);
    return ck;
  }

  /**
   * Creates one DEK per message id under the conversation's CK, all in one transaction, and
   * returns them. Commit these before inserting the rows they encrypt.
   *
   * @throws KeyNotFoundError if the conversation has no key; KeyExistsError if a message id
   *   already has a key (the whole batch is then rolled back).
   */
  async createMessageKeys(convId: string, msgIds: readonly string[]): Promise<Map<string, CryptoKey>> {
    if (msgIds.length === 0) return new Map();
    const made = (await this.createMessageKeysMany([{ convId, msgIds }])).get(convId);
    if (made instanceof Error) throw made;
    return made ?? new Map();
  }

  /**
   * {@link createMessageKeys} for several conversations in ONE keys.db transaction (the batching
   * writer's path). A conversation whose key is missing (destroyed meanwhile) gets a
   * KeyNotFoundError in the result and stores nothing; the others proceed.
   * @throws KeyExistsError when any id already has a key (nothing of the batch is stored).
   */
  createMessageKeysMany(
    batches: readonly { convId: string; msgIds: readonly string[] }[],
  ): Promise<Map<string, Map<string, CryptoKey> | KeyNotFoundError>> {
    const maker = {
      conversationKey: (convId: string) => this.#conversationKey(convId),
      storeWrappedKeys: (rows: readonly WrappedKeyRow[]) => this.storeWrappedKeys(rows),
      random: this.#random,
      cache: this.#cache,
    };
    return createMessageKeysMany(maker, batches);
  }

  /** Where each of `msgIds` that has a key sits (ids without one are absent): {@link keyRows.locateKeys}. */
  locate(msgIds: readonly string[]): Promise<Map<string, KeyPlace>> {
    return keyRows.locateKeys(this.db, msgIds);
  }

  /** Every message and file key's place, in (conversation, order) order: for reconciling keys.db with vault.db at start. */
  keyPlaces(): Promise<KeyPlace[]> {
    return keyRows.listKeyPlaces(this.db);
  }

  /**
   * Gives keys stored with order 0 (before keystore-2) their message's seq, in one transaction.
   * Keys that already have an order are left as they are.
   * @returns how many keys were placed.
   */
  placeKeys(places: readonly KeyPlace[]): Promise<number> {
    return keyRows.placeKeys(this.db, places);
  }

  /**
   * The DEK of `msgId` (from the cache, else unwrapped through its CK).
   * @throws KeyNotFoundError if the message has no key: never created, or destroyed.
   */
  async messageKey(msgId: string): Promise<CryptoKey> {
    const cached = this.#cache.deks.get(msgId);
    if (cached) return cached.key;
    const epoch = this.#cache.epoch;
    const row = await this.db.get<{ conv_id: string; wrapped: Uint8Array }>(
      'SELECT conv_id, wrapped FROM message_keys WHERE msg_id = ?',
      [msgId],
    );
    if (!row) throw new KeyNotFoundError(`message ${msgId} has no key (never created, or destroyed)`);
    const ck = await this.#conversationKey(row.conv_id);
    const key = await unwrapDataKey(ck, row.wrapped, dekAad(msgId));
    if (epoch === this.#cache.epoch) this.#cache.deks.set(msgId, { convId: row.conv_id, key });
    return key;
  }

  /**
   * Destroys the DEKs of `msgIds` (delete the rows they open first), then truncates the WAL.
   * @returns the number of keys that existed and were destroyed.
   */
  destroyMessageKeys(msgIds: readonly string[]): Promise<number> {
    return destruction.destroyMessageKeys(this.db, this.#cache, msgIds);
  }

  /**
   * Destroys the conversation's CK and every DEK under it, then truncates the WAL.
   * @returns how many message keys were destroyed and whether a CK existed.
   */
  destroyConversation(convId: string): Promise<{ messageKeys: number; conversationKey: boolean }> {
    return destruction.destroyConversation(this.db, this.#cache, convId);
  }

  /**
   * Destroys keys once the rows they open are gone, overlapping the two databases' work while
   * keeping the write order: the deletes run at once, in one keys.db transaction, but that
   * transaction commits only after `rowsGone` (the commit of the rows' vault transaction)
   * resolves; if `rowsGone` rejects it rolls back, nothing is destroyed, and that error is thrown.
   * Then the WAL is truncated, as by the other destroy methods.
   *
   * Start it only once the rows' transaction holds its database (from inside its callback), and
   * never make that transaction wait for this one: this transaction holds keys.db while it waits.
   * Cached keys are forgotten before the transaction is queued, so no unwrap can refill them.
   *
   * @example
   * let keys: Promise<DestroyedKeys> | undefined;
   * const gone = vaultDb.transaction(async (tx) => {
   *   keys = keystore.destroyKeysAfter({ conversationIds: [convId] }, committed); // committed: settles with `gone`
   *   await tx.run('DELETE FROM msg_messages WHERE conversation = ?', [convId]);
   * });
   * @throws the rejection of `rowsGone`; else VaultError subclasses of keys.db.
   */
  destroyKeysAfter(what: KeyDestruction, rowsGone: Promise<unknown>): Promise<DestroyedKeys> {
    return destruction.destroyKeysAfter(this.db, this.#cache, what, rowsGone);
  }

  /**
   * Removes message keys whose message no longer exists, given every message id present in
   * vault.db (a restore: server/ops/restore.ts; messaging's start reconciles by place instead).
   * @returns the ids whose keys were destroyed.
   */
  sweepOrphans(existingMsgIds: Iterable<string>): Promise<string[]> {
    return destruction.sweepOrphans(this, existingMsgIds);
  }

  /**
   * Destroys conversation keys, and any message key under them, whose conversation no longer
   * exists in vault.db (a crash after a conversation's rows went and before its keys did:
   * {@link sweepOrphans} takes the message keys, this the CK). Call at start, before any
   * conversation can be created (its CK is committed before its row), with every conversation id
   * in vault.db. One transaction, then the WAL is truncated, also when there is no orphan
   * ({@link destruction.sweepOrphanConversations} says why).
   * @returns the conversation ids whose keys were destroyed.
   */
  sweepOrphanConversations(existingConvIds: Iterable<string>): Promise<string[]> {
    return destruction.sweepOrphanConversations(this, existingConvIds);
  }

  /** Number of message keys and conversation keys stored (for status and tests). */
  async counts(): Promise<{ conversations: number; messages: number }> {
    const c = await this.db.get<{ n: number }>('SELECT count(*) AS n FROM conversation_keys');
    const m = await this.db.get<{ n: number }>('SELECT count(*) AS n FROM message_keys');
    return { conversations: c?.n ?? 0, messages: m?.n ?? 0 };
  }

  /**
   * Read-only, as {@link Keyring.census} for the keyring: how many CKs open under the current
   * master key, how many only under `next` (a rotation being resumed), and which open under
   * neither (named by conversation id). A rotation runs this before it changes anything.
   */
  census(next?: MasterKey): Promise<KeyCensus> {
    return conversationKeyCensus(this.db, () => this.#mk, next);
  }

  /**
   * Re-wraps every CK under `next` in one transaction (master-key rotation). DEKs are wrapped
   * under CKs, which do not change, so they are untouched. CKs already under `next` (a resumed
   * rotation) are skipped. Then truncates the WAL, so the old wrappings do not survive there.
   * @returns the number of conversation keys re-wrapped.
   */
  async rewrapAll(next: MasterKey): Promise<number> {
    const n = await rewrapConversationKeys(this.db, () => this.#mk, next);
    this.#mk = next;
    await this.db.checkpointTruncate();
    return n;
  }

  /** Forgets cached keys and closes `keys.db`. */
  async close(): Promise<void> {
    this.#cache.clear();
    await this.db.close();
  }
}
