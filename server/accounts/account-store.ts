/**
 * Accounts and their envelopes, in SQLite.
 *
 * An account's password hash is the envelope password's hash until first login replaces it
 * (`must_change_password`). Lockout state (consecutive failures, lock expiry) lives on the row so
 * that it survives a restart. Status `locked` is derived from `locked_until` at the caller's clock.
 */
import type { Clearance } from '../../pki/clearance.js';
import { RowCache, VaultConstraintError, type Queryable } from '../vault/index.js';
import { AccountExistsError, AccountInUseError, AccountNotFoundError } from './errors.js';

/** Roles (API.md). Separation of duties is enforced by routes, not by the store. */
export const ROLES = ['staff', 'officer', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Stored status; `locked` is derived (see {@link accountStatus}). */
export type StoredStatus = 'active' | 'disabled';
export type AccountStatus = StoredStatus | 'locked';

/** One account row. */
export interface AccountRecord {
  login: string;
  fullName: string;
  department: string;
  /** Rank or position, free text; null when none was given. */
  rank: string | null;
  role: Role;
  clearance: Clearance;
  status: StoredStatus;
  passwordHash: string;
  mustChangePassword: boolean;
  failedCount: number;
  firstFailedAt: Date | null;
  /** Times of the failed logins still inside the lockout window, oldest first (auth/lockout.ts). */
  recentFailures: Date[];
  lockedUntil: Date | null;
  createdAt: Date;
  createdBy: string;
}

/** Envelope bookkeeping (the password itself is never stored). */
export interface EnvelopeRecord {
  serial: string;
  login: string;
  issuedBy: string;
  issuedAt: Date;
  expiresAt: Date;
  state: 'pending' | 'used' | 'superseded';
  usedAt: Date | null;
  receipt: Buffer | null;
}

/** Schema of this store, for `Db.migrate`. */
export const ACCOUNT_MIGRATIONS = [
  {
    id: 'server/accounts-1',
    sql: `
CREATE TABLE accounts (
  login TEXT PRIMARY KEY,
  full_name TEXT NOT NULL,
  department TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('staff','officer','auditor','admin')),
  clearance TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active','disabled')),
  password_hash TEXT NOT NULL,
  must_change_password INTEGER NOT NULL,
  failed_count INTEGER NOT NULL DEFAULT 0,
  first_failed_at TEXT,
  locked_until TEXT,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL
) STRICT;
CREATE TABLE envelopes (
  serial TEXT PRIMARY KEY,
  login TEXT NOT NULL REFERENCES accounts(login),
  issued_by TEXT NOT NULL,
  issued_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending','used','superseded')),
  used_at TEXT,
  receipt BLOB
) STRICT;
CREATE INDEX envelopes_login ON envelopes(login);
`,
  },
  {
    // The lockout counts failures in a sliding window: it needs their times, not only the first.
    id: 'server/accounts-2-recent-failures',
    sql: `ALTER TABLE accounts ADD COLUMN recent_failures TEXT NOT NULL DEFAULT '[]';`,
  },
  {
    // A rank or position (free text, optional): the directory lists people by department and rank.
    id: 'server/accounts-3-rank',
    sql: `ALTER TABLE accounts ADD COLUMN rank TEXT;`,
  },
] as const;

interface AccountRow {
  login: string;
  full_name: string;
  department: string;
  rank: string | null;
  role: Role;
  clearance: Clearance;
  status: StoredStatus;
  password_hash: string;
  must_change_password: number;
  failed_count: number;
  first_failed_at: string | null;
  recent_failures: string;
  locked_until: string | null;
  created_at: string;
  created_by: string;
}

interface EnvelopeRow {
  serial: string;
  login: string;
  issued_by: string;
  issued_at: string;
  expires_at: string;
  state: EnvelopeRecord['state'];
  used_at: string | null;
  receipt: Buffer | null;
}

const date = (s: string | null): Date | null => (s === null ? null : new Date(s));

function toAccount(r: AccountRow): AccountRecord {
  return {
    login: r.login,
    fullName: r.full_name,
    department: r.department,
    rank: r.rank,
    role: r.role,
    clearance: r.clearance,
    status: r.status,
    passwordHash: r.password_hash,
    mustChangePassword: r.must_change_password === 1,
    failedCount: r.failed_count,
    firstFailedAt: date(r.first_failed_at),
    recentFailures: (JSON.parse(r.recent_failures) as string[]).map((s) => new Date(s)),
    lockedUntil: date(r.locked_until),
    createdAt: new Date(r.created_at),
    createdBy: r.created_by,
  };
}

function toEnvelope(r: EnvelopeRow): EnvelopeRecord {
  return {
    serial: r.serial,
    login: r.login,
    issuedBy: r.issued_by,
    issuedAt: new Date(r.issued_at),
    expiresAt: new Date(r.expires_at),
    state: r.state,
    usedAt: date(r.used_at),
    receipt: r.receipt,
  };
}

/** The status shown to clients at time `now`. */
export function accountStatus(a: AccountRecord, now: Date): AccountStatus {
  if (a.status === 'disabled') return 'disabled';
  if (a.lockedUntil !== null && a.lockedUntil.getTime() > now.getTime()) return 'locked';
  return 'active';
}

/** What `setNames` changes: undefined keeps a field, a `rank` of null removes it. */
export interface AccountNames {
  fullName?: string | undefined;
  department?: string | undefined;
  rank?: string | null | undefined;
}

/** New account fields. */
export interface NewAccount {
  login: string;
  fullName: string;
  department: string;
  rank?: string | undefined;
  role: Role;
  clearance: Clearance;
  passwordHash: string;
  createdBy: string;
  createdAt: Date;
}

/** Accounts kept in memory: every request reads its own (vault/row-cache.ts). */
const CACHED_ACCOUNTS = 10_000;

/**
 * Reads and writes accounts and envelopes. Pass a transaction handle to compose operations.
 * Accounts read by login are cached; every write to the accounts table goes through
 * {@link AccountStore.#write}, which keeps that cache exact. A record it returns is frozen.
 */
export class AccountStore {
  readonly #cache: RowCache<string, AccountRecord>;
  readonly #generations: Map<string, number>;

  /**
   * @param cache - shared by the stores over one Db and its transactions ({@link with})
   * @param generations - likewise ({@link accessGeneration})
   */
  constructor(
    private readonly db: Queryable,
    cache = new RowCache<string, AccountRecord>(CACHED_ACCOUNTS),
    generations = new Map<string, number>(),
  ) {
    this.#cache = cache;
    this.#generations = generations;
  }

  /** The store over another handle (a transaction), sharing this store's cache and generations. */
  with(tx: Queryable): AccountStore {
    return new AccountStore(tx, this.#cache, this.#generations);
  }

  /**
   * How many times this process has written `login`'s status or password. A login reads it before
   * its argon2 check and compares it in the transaction that creates the session: a disable then
   * enable meanwhile leaves the row as it was, yet ended the sessions, and a session decided on the
   * read before it must not outlive that. In memory, as the row cache: one process owns the vault,
   * and no login is in flight across a restart. A write rolled back still counts: the login in
   * flight is refused and can be tried again, the safe way to be wrong.
   */
  accessGeneration(login: string): number {
    return this.#generations.get(login) ?? 0;
  }

  #accessChanged(login: string): void {
    this.#generations.set(login, this.accessGeneration(login) + 1);
  }

  get(login: string): Promise<AccountRecord | undefined> {
    return this.#cache.read(login, async () => {
      const row = await this.db.get<AccountRow>('SELECT * FROM accounts WHERE login = ?', [login]);
      return row ? toAccount(row) : undefined;
    });
  }

  /** Every write to the accounts table: through the cache, which drops the row. */
  async #write(login: string, sql: string, params: unknown[]): Promise<number> {
    return (await this.#cache.write(this.db, login, () => this.db.run(sql, params))).changes;
  }

  /** @throws AccountNotFoundError */
  async require(login: string): Promise<AccountRecord> {
    const a = await this.get(login);
    if (!a) throw new AccountNotFoundError(login);
    return a;
  }

  async list(): Promise<AccountRecord[]> {
    const rows = await this.db.all<AccountRow>('SELECT * FROM accounts ORDER BY login');
    return rows.map(toAccount);
  }

  async count(): Promise<number> {
    const r = await this.db.get<{ n: number }>('SELECT count(*) AS n FROM accounts');
    return r?.n ?? 0;
  }

  /** @throws AccountExistsError */
  async create(a: NewAccount): Promise<void> {
    if (await this.get(a.login)) throw new AccountExistsError(a.login);
    await this.#write(
      a.login,
      `INSERT INTO accounts (login, full_name, department, rank, role, clearance, status, password_hash,
         must_change_password, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, 1, ?, ?)`,
      [a.login, a.fullName, a.department, a.rank ?? null, a.role, a.clearance, a.passwordHash, a.createdAt.toISOString(), a.createdBy],
    );
  }

  async setStatus(login: string, status: StoredStatus): Promise<void> {
    this.#accessChanged(login);
    await this.#write(login, 'UPDATE accounts SET status = ? WHERE login = ?', [status, login]);
  }

  async setClearance(login: string, clearance: Clearance): Promise<void> {
    await this.#write(login, 'UPDATE accounts SET clearance = ? WHERE login = ?', [clearance, login]);
  }

  /**
   * Replaces the full name, department and/or rank (the routes check their length); a field left
   * undefined is kept, a rank of null is removed.
   */
  async setNames(login: string, names: AccountNames): Promise<void> {
    await this.#write(
      login,
      `UPDATE accounts SET full_name = coalesce(?, full_name), department = coalesce(?, department),
         rank = CASE WHEN ? THEN ? ELSE rank END WHERE login = ?`,
      [names.fullName ?? null, names.department ?? null, names.rank !== undefined ? 1 : 0, names.rank ?? null, login],
    );
  }

  /**
   * Deletes the account and its envelopes. Only an account nothing else refers to can go: the
   * certificates and sessions tables reference accounts(login), and foreign keys are on in every
   * vault connection (vault/db.ts checks it at open), so SQLite itself refuses an account that has
   * ever had a certificate (and hence a session): `AccountInUseError`. Run it in a transaction, so
   * the envelopes come back when it is refused.
   * @throws AccountInUseError
   */
  async delete(login: string): Promise<void> {
    this.#accessChanged(login);
    await this.db.run('DELETE FROM envelopes WHERE login = ?', [login]);
    try {
      await this.#write(login, 'DELETE FROM accounts WHERE login = ?', [login]);
    } catch (err) {
      // The one constraint a DELETE of an account can break is a reference to it.
      if (err instanceof VaultConstraintError) throw new AccountInUseError(login);
      throw err;
    }
  }

  /**
   * Replaces the password only if the account still has `expected` (its hash and pending-change
   * flag as read when the request began); false, and nothing written, when it changed meanwhile
   * (an officer reset while argon2 ran).
   */
  async replacePassword(
    login: string,
    expected: { hash: string; mustChange: boolean },
    next: { hash: string; mustChange: boolean },
  ): Promise<boolean> {
    this.#accessChanged(login);
    const changes = await this.#write(
      login,
      'UPDATE accounts SET password_hash = ?, must_change_password = ? WHERE login = ? AND password_hash = ? AND must_change_password = ?',
      [next.hash, next.mustChange ? 1 : 0, login, expected.hash, expected.mustChange ? 1 : 0],
    );
    return changes === 1;
  }

  /** Sets a password hash; `mustChange` true for an envelope password, false for a chosen one. */
  async setPassword(login: string, hash: string, mustChange: boolean): Promise<void> {
    this.#accessChanged(login);
    await this.#write(login, 'UPDATE accounts SET password_hash = ?, must_change_password = ? WHERE login = ?', [
      hash,
      mustChange ? 1 : 0,
      login,
    ]);
  }

  /** Records failure state (see auth/lockout.ts). */
  async setFailures(login: string, recent: readonly Date[], lockedUntil: Date | null): Promise<void> {
    await this.#write(
      login,
      'UPDATE accounts SET failed_count = ?, first_failed_at = ?, recent_failures = ?, locked_until = ? WHERE login = ?',
      [recent.length, recent[0]?.toISOString() ?? null, JSON.stringify(recent.map((d) => d.toISOString())), lockedUntil?.toISOString() ?? null, login],
    );
  }

  // ---- envelopes

  /** Adds a pending envelope and supersedes every older pending one of the login. */
  async addEnvelope(e: Omit<EnvelopeRecord, 'state' | 'usedAt' | 'receipt'>): Promise<void> {
    await this.db.run(`UPDATE envelopes SET state = 'superseded' WHERE login = ? AND state = 'pending'`, [e.login]);
    await this.db.run(
      `INSERT INTO envelopes (serial, login, issued_by, issued_at, expires_at, state) VALUES (?, ?, ?, ?, ?, 'pending')`,
      [e.serial, e.login, e.issuedBy, e.issuedAt.toISOString(), e.expiresAt.toISOString()],
    );
  }

  /** The login's pending envelope, if any. */
  async pendingEnvelope(login: string): Promise<EnvelopeRecord | undefined> {
    const row = await this.db.get<EnvelopeRow>(
      `SELECT * FROM envelopes WHERE login = ? AND state = 'pending' ORDER BY issued_at DESC LIMIT 1`,
      [login],
    );
    return row ? toEnvelope(row) : undefined;
  }

  async envelope(serial: string): Promise<EnvelopeRecord | undefined> {
    const row = await this.db.get<EnvelopeRow>('SELECT * FROM envelopes WHERE serial = ?', [serial]);
    return row ? toEnvelope(row) : undefined;
  }

  /**
   * Marks a pending envelope used and stores the signed receipt (CMS DER); false when the envelope
   * is no longer pending (superseded by a reset meanwhile), and nothing is written.
   */
  async useEnvelope(serial: string, at: Date, receipt: Buffer): Promise<boolean> {
    const r = await this.db.run(`UPDATE envelopes SET state = 'used', used_at = ?, receipt = ? WHERE serial = ? AND state = 'pending'`, [
      at.toISOString(),
      receipt,
      serial,
    ]);
    return r.changes === 1;
  }
}
