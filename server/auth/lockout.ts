/**
 * Lockout: `maxFailures` failed logins within any `windowMs` (a sliding window) lock a login for
 * `lockMs` or until an officer unlocks it.
 *
 * Sliding, not fixed: a window that restarted after `windowMs` from its first failure let
 * failures just before and just after that moment never add up (4 + 4 guesses within a minute
 * went unlocked). The times of the failures still inside the window are kept, at most
 * `maxFailures` of them.
 *
 * Where the counters live, all in vault.db so they survive a restart alike:
 * - an account's on its row (accounts.recent_failures, locked_until);
 * - a login with no account in `login_lockouts` under its keyed hash (auth/login-hash.ts), never
 *   the string. Kept in memory, as it once was, a restart forgot them: afterwards a locked unknown
 *   login answered AUTH_FAILED where a locked real one still answered ACCOUNT_LOCKED, which told
 *   whether a login exists;
 * - the TLS certificate a login is tried over, in the same table (below).
 *
 * Bounded without telling. Random logins must not grow the table without limit, and dropping a
 * row must not be seen: a real account's counter is never dropped, so an unknown login whose lock
 * vanished early would be told apart. Two rules give both:
 * 1. A row is deleted only once it says no more than no row at all: its lock has run out (which
 *    restarts the count), or it has no lock and its last failure left the window. `forget_after`
 *    is that moment; a few such rows are swept at every failure. Unobservable by construction.
 * 2. Each certificate has a counter too, of every failed login over it (real or unknown login
 *    alike). `certificateMaxFailures` of them within `windowMs` lock the certificate for `lockMs`:
 *    every login over it then answers ACCOUNT_LOCKED, whatever the login — the same answer for
 *    real and unknown ones, so it tells nothing either. A row lives at most
 *    max(`windowMs`, `lockMs`) after the failure that last touched it, and any `windowMs` holds at
 *    most `certificateMaxFailures` failures of one certificate, so a certificate keeps at most
 *    about `certificateMaxFailures × ⌈max(windowMs, lockMs) / windowMs⌉` rows alive (80 at the
 *    defaults). Only certificates the officer issued and has not revoked get past TLS: the live
 *    rows are bounded by the officer, not by whoever guesses.
 * Besides, the table holds at most `maxRows` (100 000, ~10 MB) rows. Reaching it with live rows
 * needs more than 1 000 certificates guessing together; only then is a live row evicted (the one
 * nearest its end), the one case where an unknown login's lock can end early.
 *
 * A success does not clear the certificate's counter: a certificate holder who logs in between
 * guesses would otherwise make it endless. Attempts on different logins over one certificate run
 * at once, and each spends its password check (argon2, queued behind its concurrency bound)
 * between the lock check and the count of its failure. Checked only before and counted only
 * after, every attempt queued behind argon2 when the limit was reached went through (300 at once
 * made 300 failures, and each past the limit locked again, pushing the end further). So an attempt
 * over a certificate is admitted ({@link Lockout.admit}) only while the failures in the window
 * plus the attempts already admitted and not yet settled stay under the limit; the others answer
 * ACCOUNT_LOCKED at once. An admitted attempt holds its place until its failure has committed
 * (then it is in the count) or it succeeded: a certificate never has more than
 * `certificateMaxFailures` failures in a window, and the lock engages once, by the failure that
 * reaches the limit, with no other attempt of that certificate in flight. One process owns vault.db,
 * so the attempts in flight are kept in memory. {@link Lockout.recordFailure} checks the lock
 * again in its transaction all the same: over a locked certificate it counts and writes nothing,
 * nor moves the lock's end.
 *
 * Callers run one attempt per login at a time (login-service.ts), so the read-then-write of a
 * login's counter needs no lock of its own; a certificate's counter is read and written in the
 * caller's transaction.
 */
import { RowCache, type Queryable } from '../vault/index.js';
import type { AccountRecord, AccountStore } from '../accounts/account-store.js';
import { AccountLockedError } from './errors.js';
import type { LoginHash } from './login-hash.js';

/** Schema of the counters kept off the accounts table, for `Db.migrate` (vault.db). */
export const LOCKOUT_MIGRATIONS = [
  {
    id: 'server/lockouts-1',
    sql: `
CREATE TABLE login_lockouts (
  -- 'login:<keyed hash>' (a login with no account) or 'cert:<SHA-256 fingerprint>'
  key TEXT PRIMARY KEY,
  -- JSON array of the failure times still inside the window (ISO), oldest first
  recent_failures TEXT NOT NULL,
  locked_until TEXT,
  -- from this time the row says no more than no row: it may be deleted
  forget_after TEXT NOT NULL
) STRICT;
CREATE INDEX login_lockouts_forget ON login_lockouts(forget_after);
`,
  },
] as const;

/** Lockout policy. */
export interface LockoutPolicy {
  maxFailures: number;
  windowMs: number;
  lockMs: number;
}

/** Options of {@link Lockout}. */
export interface LockoutOptions {
  accounts: AccountStore;
  /** vault.db (the `login_lockouts` table). */
  db: Queryable;
  policy: LockoutPolicy;
  now: () => Date;
  /** Names logins that have no account (auth/login-hash.ts). */
  loginHash: LoginHash;
  /** Failed logins over one certificate within `windowMs` that lock the certificate. Default 8 × `maxFailures`. */
  certificateMaxFailures?: number;
  /** Most rows in `login_lockouts`. Default 100 000. */
  maxRows?: number;
  /** Expired rows deleted per failure at most. Default 64. */
  sweepBatch?: number;
}

/** What one failure did. */
export interface FailureOutcome {
  /** This failure locked the login. */
  locked: boolean;
  /** This failure locked the certificate it came over; `until` is when that lock ends. */
  certificateLocked: boolean;
  certificateLockedUntil?: Date;
}

/**
 * A login attempt over a certificate admitted by {@link Lockout.admit}: it holds a place in the
 * certificate's count until released. Pass it to {@link Lockout.recordFailure}, which releases it
 * when the failure has committed; release it yourself on every other way out (idempotent).
 */
export interface Admission {
  readonly fingerprint: string;
  release(): void;
}

interface Counter {
  /** Failure times inside the window, oldest first. */
  recent: Date[];
  lockedUntil: Date | null;
}

interface LockoutRow {
  key: string;
  recent_failures: string;
  locked_until: string | null;
  forget_after: string;
}

const CLEAR: Counter = Object.freeze({ recent: [], lockedUntil: null });

/** Rows of `login_lockouts` kept in memory (certificates' counters are read on every login). */
const CACHED_ROWS = 10_000;

const certKey = (fingerprint: string): string => `cert:${fingerprint}`;

/** Tracks failures and locks. */
export class Lockout {
  readonly #cache = new RowCache<string, Counter>(CACHED_ROWS);
  /** Rows in the table as far as this process knows; counted once, then kept up to date (recounted at the cap). */
  #rows: number | undefined;
  readonly #certMax: number;
  readonly #maxRows: number;
  readonly #sweepBatch: number;
  /** Admitted attempts not yet released, per certificate fingerprint (entries at 0 go). */
  readonly #inFlight = new Map<string, number>();
  /** Bumped whenever a certificate's counter write settles (see {@link admit}). */
  #certSettled = 0;

  constructor(private readonly o: LockoutOptions) {
    this.#certMax = o.certificateMaxFailures ?? 8 * o.policy.maxFailures;
    this.#maxRows = o.maxRows ?? 100_000;
    this.#sweepBatch = o.sweepBatch ?? 64;
  }

  /** The table key of a login that has no account. */
  #loginKey(login: string): string {
    return `login:${this.o.loginHash(login)}`;
  }

  #readRow(key: string): Promise<Counter | undefined> {
    return this.#cache.read(key, async () => {
      const r = await this.o.db.get<LockoutRow>('SELECT * FROM login_lockouts WHERE key = ?', [key]);
      if (!r) return undefined;
      return {
        recent: (JSON.parse(r.recent_failures) as string[]).map((s) => new Date(s)),
        lockedUntil: r.locked_until === null ? null : new Date(r.locked_until),
      };
    });
  }

  /** The moment from which `c` behaves as no counter at all (see the module comment, rule 1). */
  #forgetAfter(c: Counter): Date {
    if (c.lockedUntil !== null) return c.lockedUntil;
    const last = c.recent.at(-1);
    // `recordFailure` keeps a failure while now − t ≤ windowMs: it is gone 1 ms later.
    return new Date(last === undefined ? 0 : last.getTime() + this.o.policy.windowMs + 1);
  }

  async #rowCount(): Promise<number> {
    this.#rows ??= (await this.o.db.get<{ n: number }>('SELECT count(*) AS n FROM login_lockouts'))?.n ?? 0;
    return this.#rows;
  }

  /** Writes (or deletes, when it is clear) the table row of `key`; `existed` says whether a row was there. */
  async #writeRow(key: string, c: Counter, existed: boolean): Promise<void> {
    const forget = this.#forgetAfter(c);
    if ((c.recent.length === 0 && c.lockedUntil === null) || forget.getTime() <= this.o.now().getTime()) {
      if (!existed) return;
      const r = await this.#cache.write(this.o.db, key, () => this.o.db.run('DELETE FROM login_lockouts WHERE key = ?', [key]));
      if (this.#rows !== undefined) this.#rows -= r.changes;
      return;
    }
    if (!existed) await this.#makeRoom();
    const r = await this.#cache.write(this.o.db, key, () =>
      this.o.db.run(
        `INSERT INTO login_lockouts (key, recent_failures, locked_until, forget_after) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET recent_failures = excluded.recent_failures,
           locked_until = excluded.locked_until, forget_after = excluded.forget_after`,
        [key, JSON.stringify(c.recent.map((d) => d.toISOString())), c.lockedUntil?.toISOString() ?? null, forget.toISOString()],
      ),
    );
    if (!existed && this.#rows !== undefined) this.#rows += r.changes;
  }

  /**
   * Deletes up to `sweepBatch` rows that say nothing any more (unobservable), and, only when the
   * table is still full, the live row nearest its end (see the module comment).
   */
  async #sweep(): Promise<void> {
    const now = this.o.now().toISOString();
    const stale = await this.o.db.all<{ key: string }>(
      'SELECT key FROM login_lockouts WHERE forget_after <= ? ORDER BY forget_after LIMIT ?',
      [now, this.#sweepBatch],
    );
    if (stale.length === 0) return;
    // Every key at once through the cache (it drops all its rows): sweeps are rare next to reads.
    const r = await this.#cache.write(this.o.db, undefined, () =>
      this.o.db.run(`DELETE FROM login_lockouts WHERE key IN (${stale.map(() => '?').join(', ')})`, stale.map((s) => s.key)),
    );
    if (this.#rows !== undefined) this.#rows -= r.changes;
  }

  async #makeRoom(): Promise<void> {
    if ((await this.#rowCount()) < this.#maxRows) return;
    this.#rows = undefined; // the count may have drifted (rolled-back writes): count again before evicting
    if ((await this.#rowCount()) < this.#maxRows) return;
    const r = await this.#cache.write(this.o.db, undefined, () =>
      this.o.db.run(
        'DELETE FROM login_lockouts WHERE key IN (SELECT key FROM login_lockouts ORDER BY forget_after LIMIT ?)',
        [this.#rows! - this.#maxRows + 1],
      ),
    );
    this.#rows! -= r.changes;
  }

  /** The counter of `login`: its account's, or the table's for a login with no account. */
  async #loginCounter(login: string): Promise<{ c: Counter; account: AccountRecord | undefined; existed: boolean }> {
    const account = await this.o.accounts.get(login);
    if (account) return { c: { recent: account.recentFailures, lockedUntil: account.lockedUntil }, account, existed: true };
    const row = await this.#readRow(this.#loginKey(login));
    return { c: row ?? CLEAR, account: undefined, existed: row !== undefined };
  }

  #isLocked(c: Counter): boolean {
    return c.lockedUntil !== null && c.lockedUntil.getTime() > this.o.now().getTime();
  }

  /** The failures of `c` that count now: none after a lock has run out (the count starts again), else those inside the window. */
  #counting(c: Counter, now: Date): Date[] {
    const lockExpired = c.lockedUntil !== null && c.lockedUntil.getTime() <= now.getTime();
    return lockExpired ? [] : c.recent.filter((d) => now.getTime() - d.getTime() <= this.o.policy.windowMs);
  }

  /** The counter after one more failure now, and whether it is the one that locked. */
  #afterFailure(c: Counter, maxFailures: number): { next: Counter; locked: boolean } {
    const now = this.o.now();
    const before = this.#counting(c, now);
    const next: Counter = { recent: [...before, now].slice(-maxFailures), lockedUntil: null };
    if (next.recent.length < maxFailures) return { next, locked: false };
    next.lockedUntil = new Date(now.getTime() + this.o.policy.lockMs);
    return { next, locked: true };
  }

  async #saveLogin(login: string, account: AccountRecord | undefined, existed: boolean, c: Counter): Promise<void> {
    if (account) return this.o.accounts.setFailures(login, c.recent, c.lockedUntil);
    return this.#writeRow(this.#loginKey(login), c, existed);
  }

  /**
   * Throws `AccountLockedError` if `login` is locked now, or the certificate `fingerprint` (the
   * one the attempt comes over) is: `scope` says which, for the audit trail only.
   */
  async assertNotLocked(login: string, fingerprint?: string): Promise<void> {
    const { c } = await this.#loginCounter(login);
    if (this.#isLocked(c)) throw new AccountLockedError('login');
    if (fingerprint !== undefined && this.#isLocked((await this.#readRow(certKey(fingerprint))) ?? CLEAR)) {
      throw new AccountLockedError('certificate');
    }
  }

  /**
   * Admits one login attempt of `login` over the certificate `fingerprint` before its password
   * check, or throws `AccountLockedError`: `login` when the login is locked, `certificate` when
   * the certificate is, or when its failures in the window plus the attempts over it already
   * admitted reach `certificateMaxFailures` (see the module comment). The same for real and
   * unknown logins.
   * @returns the admission; the caller releases it when the attempt ends, at the latest.
   */
  async admit(login: string, fingerprint: string): Promise<Admission> {
    const { c } = await this.#loginCounter(login);
    if (this.#isLocked(c)) throw new AccountLockedError('login');
    const key = certKey(fingerprint);
    let row: Counter;
    for (;;) {
      // A failure that commits and releases its admission while this read runs would be in
      // neither the row read nor the attempts in flight: read again until no such write settled.
      const settled = this.#certSettled;
      row = (await this.#readRow(key)) ?? CLEAR;
      if (settled === this.#certSettled) break;
    }
    // From here to the count below nothing awaits: the check and the count are one step.
    if (this.#isLocked(row)) throw new AccountLockedError('certificate');
    const inFlight = this.#inFlight.get(fingerprint) ?? 0;
    if (this.#counting(row, this.o.now()).length + inFlight >= this.#certMax) throw new AccountLockedError('certificate');
    this.#inFlight.set(fingerprint, inFlight + 1);
    let held = true;
    return {
      fingerprint,
      release: () => {
        if (!held) return;
        held = false;
        const n = (this.#inFlight.get(fingerprint) ?? 1) - 1;
        if (n > 0) this.#inFlight.set(fingerprint, n);
        else this.#inFlight.delete(fingerprint);
      },
    };
  }

  /**
   * Counts one failure of `login` (and of the certificate `fingerprint` it came over). The same
   * reads and writes whether the login has an account or not. Run it inside the transaction that
   * also records the failure, so both land together; `admission` (that attempt's, from
   * {@link admit}) is released when that transaction has settled.
   * @throws AccountLockedError (`certificate`) when the certificate is locked already: then
   *   nothing is counted or written, and the lock's end does not move.
   */
  async recordFailure(login: string, fingerprint?: string, admission?: Admission): Promise<FailureOutcome> {
    try {
      return await this.#recordFailure(login, fingerprint);
    } finally {
      if (admission) this.o.db.whenSettled(() => admission.release());
    }
  }

  async #recordFailure(login: string, fingerprint: string | undefined): Promise<FailureOutcome> {
    const key = fingerprint === undefined ? undefined : certKey(fingerprint);
    // A locked certificate counts no further, for any login: no row is made, the lock stays as set.
    if (key !== undefined && this.#isLocked((await this.#readRow(key)) ?? CLEAR)) throw new AccountLockedError('certificate');
    await this.#sweep();
    const { c, account, existed } = await this.#loginCounter(login);
    const l = this.#afterFailure(c, this.o.policy.maxFailures);
    await this.#saveLogin(login, account, existed, l.next);
    if (key === undefined) return { locked: l.locked, certificateLocked: false };
    const row = await this.#readRow(key); // after the sweep, which may have removed it
    const k = this.#afterFailure(row ?? CLEAR, this.#certMax);
    await this.#writeRow(key, k.next, row !== undefined);
    // admit() reads the row outside this transaction: it reads again if this settles meanwhile.
    this.o.db.whenSettled(() => void this.#certSettled++);
    return {
      locked: l.locked,
      certificateLocked: k.locked,
      ...(k.locked && k.next.lockedUntil ? { certificateLockedUntil: k.next.lockedUntil } : {}),
    };
  }

  /** Clears the failures after a successful login (the login's only, see the module comment). */
  async recordSuccess(login: string): Promise<void> {
    const { c, account, existed } = await this.#loginCounter(login);
    if (c.recent.length !== 0 || c.lockedUntil !== null) await this.#saveLogin(login, account, existed, CLEAR);
  }

  /** Officer unlock. */
  async unlock(login: string): Promise<void> {
    const { account, existed } = await this.#loginCounter(login);
    await this.#saveLogin(login, account, existed, CLEAR);
  }

  /**
   * An account was just created for `login` (call in its transaction): a count its login had
   * collected while it had no account moves onto the account row. Else a login locked by guesses
   * just before its creation would open at once, which no real account does.
   */
  async adopt(login: string): Promise<void> {
    const key = this.#loginKey(login);
    const row = await this.#readRow(key);
    if (!row) return;
    if (this.#forgetAfter(row).getTime() > this.o.now().getTime()) await this.o.accounts.setFailures(login, row.recent, row.lockedUntil);
    await this.#writeRow(key, CLEAR, true);
  }

  /**
   * The account `a` is being deleted (call in its transaction, before the row goes): its count
   * moves to the table, so its login goes on answering as it did.
   */
  async release(a: AccountRecord): Promise<void> {
    const key = this.#loginKey(a.login);
    await this.#writeRow(key, { recent: a.recentFailures, lockedUntil: a.lockedUntil }, (await this.#readRow(key)) !== undefined);
  }
}
