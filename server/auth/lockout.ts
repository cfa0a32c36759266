/**
 * Lockout: after `maxFailures` consecutive failed logins within `windowMs`, a login is locked for
 * `lockMs` or until an officer unlocks it.
 *
 * Existing accounts keep their counters on the account row (survive restarts). Unknown logins get
 * the same treatment from an in-memory table, so the answers (401 then 423) never reveal whether a
 * login exists.
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
  count: number;
  firstAt: Date | null;
  lockedUntil: Date | null;
}

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
    if (a) return { c: { count: a.failedCount, firstAt: a.firstFailedAt, lockedUntil: a.lockedUntil }, known: true };
    return { c: this.ghosts.get(login) ?? { count: 0, firstAt: null, lockedUntil: null }, known: false };
  }

  private async save(login: string, known: boolean, c: Counter): Promise<void> {
    if (known) return this.accounts.setFailures(login, c.count, c.firstAt, c.lockedUntil);
    this.ghosts.delete(login);
    if (c.count === 0 && c.lockedUntil === null) return;
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
    const windowOver = c.firstAt === null || now.getTime() - c.firstAt.getTime() > this.policy.windowMs;
    const next: Counter =
      lockExpired || windowOver ? { count: 1, firstAt: now, lockedUntil: null } : { ...c, count: c.count + 1 };
    let locked = false;
    if (next.count >= this.policy.maxFailures) {
      next.lockedUntil = new Date(now.getTime() + this.policy.lockMs);
      locked = true;
    }
    await this.save(login, known, next);
    return locked;
  }

  /** Clears the failures after a successful login. */
  async recordSuccess(login: string): Promise<void> {
    const { c, known } = await this.counter(login);
    if (c.count !== 0 || c.lockedUntil !== null) await this.save(login, known, { count: 0, firstAt: null, lockedUntil: null });
  }

  /** Officer unlock. */
  async unlock(login: string): Promise<void> {
    const { known } = await this.counter(login);
    await this.save(login, known, { count: 0, firstAt: null, lockedUntil: null });
  }
}
