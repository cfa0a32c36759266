/**
 * Lockout: `maxFailures` failed logins within any `windowMs` (a sliding window) lock a login for
 * `lockMs` or until an officer unlocks it.
 *
 * Sliding, not fixed: a window that restarted after `windowMs` from its first failure let
 * failures just before and just after that moment never add up (4 + 4 guesses within a minute
 * went unlocked). The times of the failures still inside the window are kept, at most
 * `maxFailures` of them.
 *
 * Existing accounts keep their counters on the account row (survive restarts). Unknown logins get
 * the same treatment from an in-memory table, so the answers (401 then 423) never reveal whether a
 * login exists. Callers run one attempt per login at a time (login-service.ts), so the
 * read-then-write here needs no lock of its own.
 */
import type { AccountStore } from '../accounts/account-store.js';
import { AccountLockedError } from './errors.js';

/** Lockout policy. */
export interface LockoutPolicy {
  maxFailures: number;
  windowMs: number;
  lockMs: number;
}

interface Counter {
  /** Failure times inside the window, oldest first. */
  recent: Date[];
  lockedUntil: Date | null;
}

const CLEAR: Counter = { recent: [], lockedUntil: null };

/** Tracks failures and locks. */
export class Lockout {
  private readonly ghosts = new Map<string, Counter>();
  constructor(
    private readonly accounts: AccountStore,
    private readonly policy: LockoutPolicy,
    private readonly now: () => Date,
    /** Bound on remembered unknown logins (memory). */
    private readonly maxGhosts = 10_000,
  ) {}

  private async counter(login: string): Promise<{ c: Counter; known: boolean }> {
    const a = await this.accounts.get(login);
    if (a) return { c: { recent: a.recentFailures, lockedUntil: a.lockedUntil }, known: true };
    return { c: this.ghosts.get(login) ?? CLEAR, known: false };
  }

  private async save(login: string, known: boolean, c: Counter): Promise<void> {
    if (known) return this.accounts.setFailures(login, c.recent, c.lockedUntil);
    this.ghosts.delete(login);
    if (c.recent.length === 0 && c.lockedUntil === null) return;
    if (this.ghosts.size >= this.maxGhosts) this.ghosts.delete(this.ghosts.keys().next().value as string);
    this.ghosts.set(login, c);
  }

  /** Throws `AccountLockedError` if `login` is locked now. */
  async assertNotLocked(login: string): Promise<void> {
    const { c } = await this.counter(login);
    if (c.lockedUntil !== null && c.lockedUntil.getTime() > this.now().getTime()) throw new AccountLockedError();
  }

  /** Counts one failure; returns true when this failure locked the login. */
  async recordFailure(login: string): Promise<boolean> {
    const { c, known } = await this.counter(login);
    const now = this.now();
    const lockExpired = c.lockedUntil !== null && c.lockedUntil.getTime() <= now.getTime();
    // After a lock has run out the count starts again; else only failures inside the window count.
    const before = lockExpired ? [] : c.recent.filter((d) => now.getTime() - d.getTime() <= this.policy.windowMs);
    const next: Counter = { recent: [...before, now].slice(-this.policy.maxFailures), lockedUntil: null };
    let locked = false;
    if (next.recent.length >= this.policy.maxFailures) {
      next.lockedUntil = new Date(now.getTime() + this.policy.lockMs);
      locked = true;
    }
    await this.save(login, known, next);
    return locked;
  }

  /** Clears the failures after a successful login. */
  async recordSuccess(login: string): Promise<void> {
    const { c, known } = await this.counter(login);
    if (c.recent.length !== 0 || c.lockedUntil !== null) await this.save(login, known, CLEAR);
  }

  /** Officer unlock. */
  async unlock(login: string): Promise<void> {
    const { known } = await this.counter(login);
    await this.save(login, known, CLEAR);
  }
}
