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
import { chunks, marks } from './sql-lists.js';
import { KeyExistsError, KeyNotFoundError, VaultConstraintError } from './errors.js';
import { createWrappedKey, dekAad, unwrapDataKey } from './key-wrap.js';
import { Lru } from './lru.js';
import { rewrapOrSkip, sealedUnder, type KeyCensus } from './keyring.js';
import type { MasterKey } from './master-key.js';
import type { CryptoKey } from './crypto-types.js';
import { randomBytes, type RandomBytes } from './aead.js';

export const KEYSTORE_MIGRATIONS = [
  {
    id: 'keystore-1',
    sql: `
      CREATE TABLE conversation_keys (
        conv_id TEXT PRIMARY KEY,
        wrapped BLOB NOT NULL,
        created_at TEXT NOT NULL
      ) STRICT;
      CREATE TABLE message_keys (
        msg_id TEXT PRIMARY KEY,
        conv_id TEXT NOT NULL REFERENCES conversation_keys (conv_id),
        wrapped BLOB NOT NULL
      ) STRICT;
      CREATE INDEX message_keys_conv ON message_keys (conv_id);`,
  },
  {
    // Message keys clustered by conversation, as vault.db's rows are (messaging/cluster-key.ts):
    // keyed (conv_id, ord, msg_id) in a WITHOUT ROWID table, `ord` being the message's seq (0 for
    // file keys and for keys stored before this), so a conversation's keys share their pages and
    // a batch's new keys land at the end of their conversations. In rowid (arrival) order,
    // destroying 100k keys spread among 1.1M rewrote 151 MB of pages; clustered, 52 MB (1.27 →
    // 0.72 s, bench/experiments/destroy-layout.ts). DROP TABLE zeroes the old pages.
    id: 'keystore-2-clustered-by-conversation',
    sql: `
      CREATE TABLE message_keys_clustered (
        conv_id TEXT NOT NULL REFERENCES conversation_keys (conv_id),
        ord INTEGER NOT NULL DEFAULT 0,
        msg_id TEXT NOT NULL UNIQUE,
        wrapped BLOB NOT NULL,
        PRIMARY KEY (conv_id, ord, msg_id)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO message_keys_clustered (conv_id, ord, msg_id, wrapped)
        SELECT conv_id, 0, msg_id, wrapped FROM message_keys ORDER BY conv_id, msg_id;
      DROP TABLE message_keys;
      ALTER TABLE message_keys_clustered RENAME TO message_keys;`,
  },
];

/** SQLite's default limit of bound parameters is 32766; stay well below it. */
const IN_CHUNK = 500;

/** AAD of a wrapped conversation key. */
export const ckAad = (convId: string): string => `ck:${convId}`;
/** AAD of a wrapped message key (defined in key-wrap.ts, which worker threads load). */
export { dekAad };

/** Which keys {@link Keystore.destroyKeysAfter} destroys. */
export interface KeyDestruction {
  /** Message (and file) key ids. Default none. */
  messageIds?: readonly string[];
  /** Conversations whose CK and every DEK under it go. Default none. */
  conversationIds?: readonly string[];
}

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

/** What {@link Keystore.destroyKeysAfter} destroyed. */
export interface DestroyedKeys {
  /** Message keys that existed and are gone (named ones and those under the conversations). */
  messageKeys: number;
  /** Conversation keys that existed and are gone. */
  conversationKeys: number;
}

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
  readonly #deks: Lru<string, { convId: string; key: CryptoKey }>;
  readonly #cks: Lru<string, CryptoKey>;
  /** Bumped by every destroy, so an unwrap that raced a destroy does not refill the cache. */
  #epoch = 0;

  private constructor(db: Db, mk: MasterKey, opts: KeystoreOptions) {
    this.db = db;
    this.#mk = mk;
    this.#random = opts.random ?? randomBytes;
    this.#now = opts.now ?? (() => new Date());
    this.#deks = new Lru(opts.cacheSize ?? 10_000);
    this.#cks = new Lru(1_000);
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
    this.#cks.set(convId, key);
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
   * {@link createMessageKeysMany}). Each row is inserted only if its conversation still has a key,
   * and RETURNING says which were: a batch that fits one statement needs no BEGIN/COMMIT (one
   * statement is one transaction), one thread-pool round trip on the message path instead of four.
   * Larger batches run in one transaction.
   *
   * @returns the conversations whose rows were stored (the others have no key: destroyed meanwhile)
   * @throws KeyExistsError when any id already has a key, or appears twice (nothing is stored)
   */
  async storeWrappedKeys(rows: readonly WrappedKeyRow[]): Promise<Set<string>> {
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
        if (rows.length) await insert(this.db, rows);
      } else {
        await this.db.transaction(async (tx) => {
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

  async #conversationKey(convId: string): Promise<CryptoKey> {
    const cached = this.#cks.get(convId);
    if (cached) return cached;
    const epoch = this.#epoch;
    const row = await this.db.get<{ wrapped: Uint8Array }>('SELECT wrapped FROM conversation_keys WHERE conv_id = ?', [convId]);
    if (!row) throw new KeyNotFoundError(`conversation ${convId} has no key (never created, or destroyed)`);
    const ck = await this.#mk.unwrapKey(row.wrapped, ckAad(convId));
    if (epoch === this.#epoch) this.#cks.set(convId, ck);
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
   * writer's path: a batch spans many conversations, and a transaction per conversation made
   * keys.db the message path's bottleneck). A conversation whose key is missing (destroyed
   * meanwhile) gets a KeyNotFoundError in the result and stores nothing; the others proceed.
   * @throws KeyExistsError when any id already has a key (nothing of the batch is stored).
   */
  async createMessageKeysMany(
    batches: readonly { convId: string; msgIds: readonly string[] }[],
  ): Promise<Map<string, Map<string, CryptoKey> | KeyNotFoundError>> {
    const out = new Map<string, Map<string, CryptoKey> | KeyNotFoundError>();
    const all = batches.flatMap((b) => b.msgIds);
    if (new Set(all).size !== all.length) throw new KeyExistsError('duplicate message ids in one batch');
    // Crypto before the insert, so the write lock is held only for the insert.
    const made = await Promise.all(
      batches.map(async (b) => {
        try {
          const ck = await this.#conversationKey(b.convId);
          return { b, keys: await Promise.all(b.msgIds.map((id) => createWrappedKey(ck, dekAad(id), this.#random))) };
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
    const live = await this.storeWrappedKeys(rows);
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
        this.#deks.set(id, { convId: b.convId, key });
      });
      out.set(b.convId, map);
    }
    return out;
  }

  /**
   * Where each of `msgIds` that has a key sits (ids without one are absent), through the unique
   * id index. vault.db has no index on message ids: its lookups by id come here
   * (messaging/message-lookup.ts).
   */
  async locate(msgIds: readonly string[]): Promise<Map<string, KeyPlace>> {
    const out = new Map<string, KeyPlace>();
    for (const chunk of chunks([...new Set(msgIds)], IN_CHUNK)) {
      const rows = await this.db.all<{ msg_id: string; conv_id: string; ord: number }>(
        `SELECT msg_id, conv_id, ord FROM message_keys WHERE msg_id IN (${marks(chunk.length)})`,
        chunk,
      );
      for (const r of rows) out.set(r.msg_id, { msgId: r.msg_id, convId: r.conv_id, ord: r.ord });
    }
    return out;
  }

  /** Every message and file key's place, in (conversation, order) order: for reconciling keys.db with vault.db at start. */
  async keyPlaces(): Promise<KeyPlace[]> {
    const rows = await this.db.all<{ msg_id: string; conv_id: string; ord: number }>(
      'SELECT msg_id, conv_id, ord FROM message_keys ORDER BY conv_id, ord, msg_id',
    );
    return rows.map((r) => ({ msgId: r.msg_id, convId: r.conv_id, ord: r.ord }));
  }

  /**
   * Gives keys stored with order 0 (before keystore-2) their message's seq, in one transaction.
   * Keys that already have an order are left as they are.
   * @returns how many keys were placed.
   */
  async placeKeys(places: readonly KeyPlace[]): Promise<number> {
    if (places.length === 0) return 0;
    // IN_CHUNK keys per statement: a million keys in 2,000 round trips, not a million.
    return this.db.transaction(async (tx) => {
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

  /**
   * The DEK of `msgId` (from the cache, else unwrapped through its CK).
   * @throws KeyNotFoundError if the message has no key: never created, or destroyed.
   */
  async messageKey(msgId: string): Promise<CryptoKey> {
    const cached = this.#deks.get(msgId);
    if (cached) return cached.key;
    const epoch = this.#epoch;
    const row = await this.db.get<{ conv_id: string; wrapped: Uint8Array }>(
      'SELECT conv_id, wrapped FROM message_keys WHERE msg_id = ?',
      [msgId],
    );
    if (!row) throw new KeyNotFoundError(`message ${msgId} has no key (never created, or destroyed)`);
    const ck = await this.#conversationKey(row.conv_id);
    const key = await unwrapDataKey(ck, row.wrapped, dekAad(msgId));
    if (epoch === this.#epoch) this.#deks.set(msgId, { convId: row.conv_id, key });
    return key;
  }

  /**
   * Destroys the DEKs of `msgIds` (delete the rows they open first), then truncates the WAL.
   * @returns the number of keys that existed and were destroyed.
   */
  async destroyMessageKeys(msgIds: readonly string[]): Promise<number> {
    this.#epoch++;
    for (const id of msgIds) this.#deks.delete(id);
    let n = 0;
    if (msgIds.length > 0) {
      n = await this.db.transaction(async (tx) => {
        let changes = 0;
        for (const chunk of chunks(msgIds, IN_CHUNK)) {
          const r = await tx.run(`DELETE FROM message_keys WHERE msg_id IN (${marks(chunk.length)})`, chunk);
          changes += r.changes;
        }
        return changes;
      });
    }
    await this.db.checkpointTruncate();
    return n;
  }

  /**
   * Destroys the conversation's CK and every DEK under it, then truncates the WAL.
   * @returns how many message keys were destroyed and whether a CK existed.
   */
  async destroyConversation(convId: string): Promise<{ messageKeys: number; conversationKey: boolean }> {
    this.#epoch++;
    this.#cks.delete(convId);
    this.#deks.deleteWhere((v) => v.convId === convId);
    const r = await this.db.transaction(async (tx) => {
      const m = await tx.run('DELETE FROM message_keys WHERE conv_id = ?', [convId]);
      const c = await tx.run('DELETE FROM conversation_keys WHERE conv_id = ?', [convId]);
      return { messageKeys: m.changes, conversationKey: c.changes > 0 };
    });
    await this.db.checkpointTruncate();
    return r;
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
  async destroyKeysAfter(what: KeyDestruction, rowsGone: Promise<unknown>): Promise<DestroyedKeys> {
    const msgIds = what.messageIds ?? [];
    const convIds = new Set(what.conversationIds ?? []);
    // Observed at once, so a rejection while the deletes run is never unhandled.
    const rows = rowsGone.then(
      () => ({ ok: true as const }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    this.#epoch++;
    for (const id of msgIds) this.#deks.delete(id);
    for (const c of convIds) this.#cks.delete(c);
    if (convIds.size > 0) this.#deks.deleteWhere((v) => convIds.has(v.convId));
    const abort = new Error('destroyKeysAfter: the rows were not deleted');
    let counts: DestroyedKeys;
    try {
      counts = await this.db.transaction(async (tx) => {
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
    await this.db.checkpointTruncate();
    return counts;
  }

  /**
   * Removes message keys whose message no longer exists, given every message id present in
   * vault.db (a restore: server/ops/restore.ts; messaging's start reconciles by place instead).
   * @returns the ids whose keys were destroyed.
   */
  async sweepOrphans(existingMsgIds: Iterable<string>): Promise<string[]> {
    const keep = existingMsgIds instanceof Set ? (existingMsgIds as Set<string>) : new Set(existingMsgIds);
    const all = await this.db.all<{ msg_id: string }>('SELECT msg_id FROM message_keys');
    const orphans = all.map((r) => r.msg_id).filter((id) => !keep.has(id));
    if (orphans.length > 0) await this.destroyMessageKeys(orphans);
    return orphans;
  }

  /**
   * Destroys conversation keys, and any message key under them, whose conversation no longer
   * exists in vault.db (a crash after a conversation's rows went and before its keys did:
   * {@link sweepOrphans} takes the message keys, this the CK). Call at start, before any
   * conversation can be created (its CK is committed before its row), with every conversation id
   * in vault.db. One transaction, then the WAL is truncated: also when there is no orphan, since a
   * crash after a deletion's keys committed and before their WAL was truncated leaves no orphan
   * but the wrapped keys in keys.db-wal, which SQLite neither checkpoints nor truncates on open.
   * @returns the conversation ids whose keys were destroyed.
   */
  async sweepOrphanConversations(existingConvIds: Iterable<string>): Promise<string[]> {
    const keep = existingConvIds instanceof Set ? (existingConvIds as Set<string>) : new Set(existingConvIds);
    const all = await this.db.all<{ conv_id: string }>('SELECT conv_id FROM conversation_keys');
    const orphans = all.map((r) => r.conv_id).filter((id) => !keep.has(id));
    if (orphans.length > 0) await this.destroyKeysAfter({ conversationIds: orphans }, Promise.resolve());
    else await this.db.checkpointTruncate();
    return orphans;
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
  async census(next?: MasterKey): Promise<KeyCensus> {
    const rows = await this.db.all<{ conv_id: string; wrapped: Uint8Array }>('SELECT conv_id, wrapped FROM conversation_keys ORDER BY conv_id');
    const census: KeyCensus = { current: 0, next: 0, unreadable: [] };
    for (const r of rows) {
      const under = await sealedUnder(this.#mk, next, r.wrapped, ckAad(r.conv_id));
      if (under) census[under]++;
      else census.unreadable.push(r.conv_id);
    }
    return census;
  }

  /**
   * Re-wraps every CK under `next` in one transaction (master-key rotation). DEKs are wrapped
   * under CKs, which do not change, so they are untouched. CKs already under `next` (a resumed
   * rotation) are skipped. Then truncates the WAL, so the old wrappings do not survive there.
   * @returns the number of conversation keys re-wrapped.
   */
  async rewrapAll(next: MasterKey): Promise<number> {
    const n = await this.db.transaction(async (tx) => {
      const rows = await tx.all<{ conv_id: string; wrapped: Uint8Array }>('SELECT conv_id, wrapped FROM conversation_keys');
      const upd = await tx.prepare('UPDATE conversation_keys SET wrapped = ? WHERE conv_id = ?');
      let changed = 0;
      try {
        for (const r of rows) {
          const rewrapped = await rewrapOrSkip(this.#mk, next, r.wrapped, ckAad(r.conv_id));
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
    this.#mk = next;
    await this.db.checkpointTruncate();
    return n;
  }

  /** Forgets cached keys and closes `keys.db`. */
  async close(): Promise<void> {
    this.#deks.clear();
    this.#cks.clear();
    await this.db.close();
  }
}
