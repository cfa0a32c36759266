/**
 * The keyring: named long-lived data keys (`audit-hmac`, `backup`, `ca-secrets`, …) and named
 * secrets (arbitrary bytes, e.g. a CA key's PKCS#8 passphrase), stored in `vault.db` table
 * `keyring`, each sealed under the master key with AAD `keyring:<kind>:<name>` so a row copied
 * under another name or kind does not open. These keys are NOT destroyable per message: they live
 * in vault.db and are therefore in data backups (they protect things that must survive a restore).
 */
import { randomBytes } from 'node:crypto';
import type { Db } from './db.js';
import { KeyExistsError, KeyNotFoundError, MasterKeyArgumentError, VaultDecryptError } from './errors.js';
import type { MasterKey } from './master-key.js';
import type { CryptoKey } from './crypto-types.js';

const MIGRATIONS = [
  {
    id: 'keyring-1',
    sql: `CREATE TABLE keyring (
      name TEXT NOT NULL,
      kind TEXT NOT NULL CHECK (kind IN ('key', 'secret')),
      sealed BLOB NOT NULL,
      created_at TEXT NOT NULL,
      PRIMARY KEY (kind, name)
    ) STRICT`,
  },
];

const NAME = /^[a-z0-9][a-z0-9._:-]{0,127}$/;

function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new MasterKeyArgumentError(`keyring name: expected [a-z0-9][a-z0-9._:-]{0,127}, got ${JSON.stringify(name.slice(0, 40))}`);
  }
}

const aadOf = (kind: 'key' | 'secret', name: string): string => `keyring:${kind}:${name}`;

/** Options of {@link Keyring.open}. */
export interface KeyringOptions {
  /** Clock for `created_at`; default `new Date()`. */
  now?: () => Date;
}

/** Named keys and secrets under the master key. Create with {@link Keyring.open}. */
export class Keyring {
  readonly #db: Db;
  #mk: MasterKey;
  readonly #now: () => Date;
  readonly #keys = new Map<string, CryptoKey>();

  private constructor(db: Db, mk: MasterKey, now: () => Date) {
    this.#db = db;
    this.#mk = mk;
    this.#now = now;
  }

  /** Creates the `keyring` table if needed. */
  static async open(db: Db, mk: MasterKey, opts: KeyringOptions = {}): Promise<Keyring> {
    await db.migrate(MIGRATIONS);
    return new Keyring(db, mk, opts.now ?? (() => new Date()));
  }

  /**
   * The data key `name` (non-extractable AES-256-GCM).
   * @throws KeyNotFoundError if it was never created.
   */
  async getKey(name: string): Promise<CryptoKey> {
    checkName(name);
    const cached = this.#keys.get(name);
    if (cached) return cached;
    const row = await this.#db.get<{ sealed: Uint8Array }>("SELECT sealed FROM keyring WHERE kind = 'key' AND name = ?", [name]);
    if (!row) throw new KeyNotFoundError(`keyring key ${name} does not exist`);
    const key = await this.#mk.unwrapKey(row.sealed, aadOf('key', name));
    this.#keys.set(name, key);
    return key;
  }

  /** The data key `name`, created on first use. Safe to call concurrently. */
  async ensureKey(name: string): Promise<CryptoKey> {
    checkName(name);
    const cached = this.#keys.get(name);
    if (cached) return cached;
    const { wrapped } = await this.#mk.wrapNewKey(aadOf('key', name));
    // INSERT OR IGNORE: if another caller won the race, its key stands and we read it back.
    await this.#db.run("INSERT OR IGNORE INTO keyring (name, kind, sealed, created_at) VALUES (?, 'key', ?, ?)", [
      name,
      wrapped,
      this.#now().toISOString(),
    ]);
    return this.getKey(name);
  }

  /**
   * Stores `secret` sealed under MK.
   * @throws KeyExistsError if a secret of that name exists and `replace` is not set.
   */
  async putSecret(name: string, secret: Uint8Array, opts: { replace?: boolean } = {}): Promise<void> {
    checkName(name);
    const sealed = await this.#mk.seal(secret, aadOf('secret', name));
    const verb = opts.replace ? 'INSERT OR REPLACE' : 'INSERT OR IGNORE';
    const r = await this.#db.run(`${verb} INTO keyring (name, kind, sealed, created_at) VALUES (?, 'secret', ?, ?)`, [
      name,
      sealed,
      this.#now().toISOString(),
    ]);
    if (r.changes === 0) throw new KeyExistsError(`keyring secret ${name} exists; pass replace to overwrite it`);
  }

  /**
   * The secret `name`, `bytes` random bytes created on first use — {@link ensureKey} for secrets.
   * Safe to call concurrently: parts that share one (`audit-hmac`: the audit trail's keyed hashes
   * and the login hash) may ask at once, and the first one stored stands.
   */
  async ensureSecret(name: string, bytes = 32): Promise<Uint8Array> {
    checkName(name);
    const sealed = await this.#mk.seal(randomBytes(bytes), aadOf('secret', name));
    await this.#db.run("INSERT OR IGNORE INTO keyring (name, kind, sealed, created_at) VALUES (?, 'secret', ?, ?)", [
      name,
      sealed,
      this.#now().toISOString(),
    ]);
    return this.getSecret(name);
  }

  /** @throws KeyNotFoundError if absent; VaultDecryptError if the row was tampered with. */
  async getSecret(name: string): Promise<Uint8Array> {
    checkName(name);
    const row = await this.#db.get<{ sealed: Uint8Array }>("SELECT sealed FROM keyring WHERE kind = 'secret' AND name = ?", [
      name,
    ]);
    if (!row) throw new KeyNotFoundError(`keyring secret ${name} does not exist`);
    return this.#mk.open(row.sealed, aadOf('secret', name));
  }

  /** True if a secret of that name exists. */
  async hasSecret(name: string): Promise<boolean> {
    checkName(name);
    return (await this.#db.get("SELECT 1 AS x FROM keyring WHERE kind = 'secret' AND name = ?", [name])) !== undefined;
  }

  /** Deletes a secret; returns whether one existed. */
  async deleteSecret(name: string): Promise<boolean> {
    checkName(name);
    const r = await this.#db.run("DELETE FROM keyring WHERE kind = 'secret' AND name = ?", [name]);
    return r.changes > 0;
  }

  /**
   * Re-seals every key and secret under `next` in one transaction (master-key rotation); from
   * then on this keyring uses `next`. Unwrapped keys stay valid (the data keys do not change).
   * Rows already sealed under `next` (a rotation resumed after a crash) are left as they are.
   * `within` runs inside the same transaction after the rows (the rotation's audit entry).
   * @returns how many rows were re-sealed.
   */
  async rewrapAll(next: MasterKey, within?: () => Promise<void>): Promise<number> {
    const n = await this.#db.transaction(async (tx) => {
      const rows = await tx.all<{ name: string; kind: 'key' | 'secret'; sealed: Uint8Array }>(
        'SELECT name, kind, sealed FROM keyring',
      );
      const upd = await tx.prepare('UPDATE keyring SET sealed = ? WHERE kind = ? AND name = ?');
      let changed = 0;
      try {
        for (const r of rows) {
          const aad = aadOf(r.kind, r.name);
          const resealed = await rewrapOrSkip(this.#mk, next, r.sealed, aad);
          if (resealed) {
            await upd.run([resealed, r.kind, r.name]);
            changed++;
          }
        }
      } finally {
        await upd.finalize();
      }
      await within?.(); // its writes to vault.db commit or roll back with the re-wrapping
      return changed;
    });
    this.#mk = next;
    return n;
  }

  /**
   * Read-only: how many rows open under the current master key, how many only under `next` (a
   * rotation being resumed), and which open under neither (named `kind:name`). A rotation runs
   * this before it changes anything.
   */
  async census(next?: MasterKey): Promise<KeyCensus> {
    const rows = await this.#db.all<{ name: string; kind: 'key' | 'secret'; sealed: Uint8Array }>('SELECT name, kind, sealed FROM keyring ORDER BY kind, name');
    const census: KeyCensus = { current: 0, next: 0, unreadable: [] };
    for (const r of rows) {
      const under = await sealedUnder(this.#mk, next, r.sealed, aadOf(r.kind, r.name));
      if (under) census[under]++;
      else census.unreadable.push(`${r.kind}:${r.name}`);
    }
    return census;
  }
}

/** Where the sealed keys of one table stand before a rotation (see {@link Keyring.census}). */
export interface KeyCensus {
  /** Open under the current master key: to be re-wrapped. */
  current: number;
  /** Open only under the new master key: re-wrapped by an earlier, interrupted attempt. */
  next: number;
  /** Open under neither (ids, never contents): a rotation must not start. */
  unreadable: string[];
}

/** Which master key opens `sealed` with `aad`: `current`, `next`, or undefined for neither. */
export async function sealedUnder(current: MasterKey, next: MasterKey | undefined, sealed: Uint8Array, aad: string): Promise<'current' | 'next' | undefined> {
  if (await opens(current, sealed, aad)) return 'current';
  if (next && (await opens(next, sealed, aad))) return 'next';
  return undefined;
}

async function opens(mk: MasterKey, sealed: Uint8Array, aad: string): Promise<boolean> {
  try {
    (await mk.open(sealed, aad)).fill(0);
    return true;
  } catch (err) {
    if (err instanceof VaultDecryptError) return false;
    throw err;
  }
}

/**
 * Re-seals `sealed` from `current` to `next`; undefined if it is already sealed under `next`.
 * @throws VaultDecryptError if neither key opens it.
 */
export async function rewrapOrSkip(current: MasterKey, next: MasterKey, sealed: Uint8Array, aad: string): Promise<Uint8Array | undefined> {
  try {
    return await current.rewrapTo(next, sealed, aad);
  } catch (err) {
    if (!(err instanceof VaultDecryptError)) throw err;
    const already = await next.open(sealed, aad).then(
      (pt) => (pt.fill(0), true),
      () => false,
    );
    if (already) return undefined;
    throw err;
  }
}
