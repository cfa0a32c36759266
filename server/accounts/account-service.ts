/**
 * What a security officer does to accounts: create (with an envelope), disable, enable, unlock,
 * reset (a new envelope that invalidates the old one), change clearance, rename, and delete one
 * that never had a certificate.
 *
 * Every operation is one database transaction together with its security event, so a crash never
 * leaves an account change without its audit entry. The state an operation depends on (status,
 * lock, clearance) is checked inside that transaction: of two at once, exactly one applies.
 */
import type { Clearance } from '../../pki/index.js';
import type { Db } from '../vault/index.js';
import type { Lockout } from '../auth/lockout.js';
import type { AuditSink, SecurityEvent } from '../auth/security-events.js';
import type { SessionStore } from '../auth/session-store.js';
import { accountStatus, type AccountNames, type AccountRecord, type AccountStatus, type AccountStore, type Role } from './account-store.js';
import { newEnvelopeSerial, renderEnvelope, type Envelope } from './envelope.js';
import { AccountNameTooLongError, AccountStateError, ClearanceUnchangedError } from './errors.js';
import { generateEnvelopePassword, type PasswordHasher } from './password.js';
import { NAME_MAX_LENGTH } from './schemas.js';

/** The account as the API shows it (API.md `account`). */
export interface AccountView {
  login: string;
  fullName: string;
  department: string;
  /** Rank or position, when the account has one. */
  rank?: string;
  role: Role;
  clearance: Clearance;
  status: AccountStatus;
  /** True until the holder replaces the envelope password at the first login (the envelope is unused). */
  mustChangePassword: boolean;
  certificate?: { serial: string; notAfter: string };
}

/** Builds the API view; `cert` is the account's current active certificate, if any. */
export function accountView(a: AccountRecord, now: Date, cert?: { serial: string; notAfter: Date }): AccountView {
  return {
    login: a.login,
    fullName: a.fullName,
    department: a.department,
    ...(a.rank !== null ? { rank: a.rank } : {}),
    role: a.role,
    clearance: a.clearance,
    status: accountStatus(a, now),
    mustChangePassword: a.mustChangePassword,
    ...(cert ? { certificate: { serial: cert.serial, notAfter: cert.notAfter.toISOString() } } : {}),
  };
}

/**
 * Throws `AccountNameTooLongError` when `a`'s names do not fit in a certificate (an account from
 * before the 64-character cap): certificate issuance asks it first, so the officer learns what to do
 * instead of pki's INVALID_PARAMETER about an "organizationalUnit".
 */
export function assertNamesFitCertificate(a: Pick<AccountRecord, 'login' | 'fullName' | 'department'>): void {
  const long = (['fullName', 'department'] as const)
    .map((field) => ({ field, length: a[field].length }))
    .filter((f) => f.length > NAME_MAX_LENGTH);
  if (long.length > 0) throw new AccountNameTooLongError(a.login, long, NAME_MAX_LENGTH);
}

/** Fields of a new account. */
export interface CreateAccountInput {
  login: string;
  fullName: string;
  department: string;
  rank?: string | undefined;
  clearance: Clearance;
  role: Role;
}

/** Dependencies of {@link AccountService}. */
export interface AccountServiceDeps {
  db: Db;
  accounts: AccountStore;
  sessions: SessionStore;
  lockout: Lockout;
  hasher: PasswordHasher;
  audit: AuditSink;
  now: () => Date;
  org: string;
  envelopeTtlMs: number;
  /** Called inside the clearance-change transaction: revoke the certificates of the old clearance. */
  revokeForClearanceChange?: (login: string, actor: string) => Promise<number>;
  /** Called after the clearance change committed (publish the CRL). */
  afterClearanceChange?: (login: string, actor: string) => Promise<void>;
  /**
   * Called inside the transaction that disables `login`: throws when that would leave no active
   * officer with an active certificate (nobody could issue, revoke or publish a CRL again).
   */
  keepOfficerBesides?: (login: string) => Promise<void>;
  randomInt?: (max: number) => number;
}

/** Officer operations on accounts. */
export class AccountService {
  constructor(private readonly d: AccountServiceDeps) {}

  private event(type: SecurityEvent['type'], actor: string, subject: string, detail?: SecurityEvent['detail']): SecurityEvent {
    return { type, at: this.d.now(), actor, subject, ...(detail ? { detail } : {}) };
  }

  /**
   * The account as it is now; call inside the operation's transaction. Checked before it, two
   * operations at once both passed the check (two disables both answered 200 and were audited
   * twice; a clearance change was audited from a clearance the account no longer had).
   * Transactions run one at a time, so the check and the write see the same state.
   */
  #current(login: string): Promise<AccountRecord> {
    return this.d.accounts.require(login);
  }

  /** A new envelope for `a` (password hashed before the transaction: argon2 is slow). */
  private async newEnvelope(a: { login: string; fullName: string }, officer: string) {
    const password = generateEnvelopePassword(this.d.randomInt);
    const hash = await this.d.hasher.hash(password);
    const issuedAt = this.d.now();
    const expiresAt = new Date(issuedAt.getTime() + this.d.envelopeTtlMs);
    const serial = newEnvelopeSerial();
    const envelope = renderEnvelope({
      serial,
      login: a.login,
      fullName: a.fullName,
      password,
      issuedBy: officer,
      issuedAt,
      expiresAt,
      org: this.d.org,
    });
    return { envelope, hash, issuedAt, expiresAt, serial };
  }

  /** Creates an account and its first envelope. @throws AccountExistsError */
  async create(input: CreateAccountInput, officer: string): Promise<{ account: AccountRecord; envelope: Envelope }> {
    const env = await this.newEnvelope(input, officer);
    await this.d.db.transaction(async (tx) => {
      const accounts = this.d.accounts.with(tx);
      await accounts.create({ ...input, passwordHash: env.hash, createdBy: officer, createdAt: env.issuedAt });
      await accounts.addEnvelope({
        serial: env.serial,
        login: input.login,
        issuedBy: officer,
        issuedAt: env.issuedAt,
        expiresAt: env.expiresAt,
      });
      // Failures counted while the login had no account stay with it (auth/lockout.ts).
      await this.d.lockout.adopt(input.login);
      await this.d.audit.append([
        this.event('account.created', officer, input.login, { role: input.role, clearance: input.clearance }),
        this.event('envelope.issued', officer, input.login, { serial: env.serial }),
      ]);
    });
    return { account: await this.d.accounts.require(input.login), envelope: env.envelope };
  }

  /**
   * Disables an account and ends its sessions at once.
   * @throws AccountNotFoundError, AccountStateError, LastOfficerCertificateError (the last officer able to act)
   */
  async disable(login: string, officer: string): Promise<AccountRecord> {
    await this.d.db.transaction(async () => {
      const a = await this.#current(login);
      if (a.status === 'disabled') throw new AccountStateError(login, 'active', 'disabled');
      await this.d.keepOfficerBesides?.(login);
      await this.d.accounts.setStatus(login, 'disabled');
      await this.d.sessions.endForLogin(login, 'account-disabled');
      await this.d.audit.append([this.event('account.disabled', officer, login)]);
    });
    return this.d.accounts.require(login);
  }

  /** Re-enables a disabled account. @throws AccountNotFoundError, AccountStateError */
  async enable(login: string, officer: string): Promise<AccountRecord> {
    await this.d.db.transaction(async () => {
      const a = await this.#current(login);
      if (a.status !== 'disabled') throw new AccountStateError(login, 'disabled', a.status);
      await this.d.accounts.setStatus(login, 'active');
      await this.d.audit.append([this.event('account.enabled', officer, login)]);
    });
    return this.d.accounts.require(login);
  }

  /** Clears a lockout. @throws AccountNotFoundError, AccountStateError (not locked) */
  async unlock(login: string, officer: string): Promise<AccountRecord> {
    await this.d.db.transaction(async () => {
      const status = accountStatus(await this.#current(login), this.d.now());
      if (status !== 'locked') throw new AccountStateError(login, 'locked', status);
      await this.d.lockout.unlock(login);
      await this.d.audit.append([this.event('account.unlocked', officer, login)]);
    });
    return this.d.accounts.require(login);
  }

  /**
   * Issues a new envelope: the old one (and the current password) stop working, sessions end,
   * and the next login must change the password again. @throws AccountNotFoundError
   */
  async reset(login: string, officer: string): Promise<{ account: AccountRecord; envelope: Envelope }> {
    const a = await this.d.accounts.require(login);
    const env = await this.newEnvelope(a, officer);
    await this.d.db.transaction(async () => {
      // Again inside the transaction: a delete may have landed while argon2 ran, and the envelope
      // row of a login that is gone then broke its foreign key: a 500 instead of ACCOUNT_NOT_FOUND.
      await this.#current(login);
      await this.d.accounts.setPassword(login, env.hash, true);
      await this.d.accounts.addEnvelope({ serial: env.serial, login, issuedBy: officer, issuedAt: env.issuedAt, expiresAt: env.expiresAt });
      await this.d.sessions.endForLogin(login, 'account-reset');
      await this.d.audit.append([
        this.event('account.reset', officer, login),
        this.event('envelope.issued', officer, login, { serial: env.serial }),
      ]);
    });
    return { account: await this.d.accounts.require(login), envelope: env.envelope };
  }

  /**
   * Replaces the full name, department and/or rank (a rank of null removes it), e.g. to bring an
   * account made before the 64-character cap within what a certificate holds. Certificates already
   * issued keep the names they were issued with (the rank is in none). The entry names the fields
   * changed, not their values.
   * @throws AccountNotFoundError, AccountStateError (nothing would change)
   */
  async rename(
    login: string,
    names: AccountNames,
    officer: string,
  ): Promise<AccountRecord> {
    await this.d.db.transaction(async () => {
      const a = await this.#current(login);
      const fields = (['fullName', 'department', 'rank'] as const).filter((f) => names[f] !== undefined && names[f] !== a[f]);
      if (fields.length === 0) throw new AccountStateError(login, 'named differently', 'named so already');
      await this.d.accounts.setNames(login, names);
      await this.d.audit.append([this.event('account.renamed', officer, login, { fields: fields.join(',') })]);
    });
    return this.d.accounts.require(login);
  }

  /**
   * Deletes an account that never had a certificate — one that therefore never logged in, signed,
   * or joined a conversation (messaging admits only people with a valid certificate): one created
   * by mistake, or from before the 64-character cap and never usable. Any other account is kept
   * (disable it) so that what it signed stays attributable. Its lockout count stays with its login.
   * @throws AccountNotFoundError, AccountInUseError
   */
  async delete(login: string, officer: string): Promise<void> {
    await this.d.db.transaction(async () => {
      const a = await this.#current(login);
      await this.d.lockout.release(a);
      await this.d.accounts.delete(login);
      await this.d.audit.append([this.event('account.deleted', officer, login, { role: a.role, clearance: a.clearance })]);
    });
  }

  /**
   * Changes the clearance. The clearance is inside the certificate, so the account's active
   * certificates are revoked (`superseded`) and a new one must be issued.
   * @throws AccountNotFoundError, ClearanceUnchangedError
   */
  async changeClearance(login: string, clearance: Clearance, officer: string): Promise<AccountRecord> {
    await this.d.db.transaction(async () => {
      const a = await this.#current(login);
      if (a.clearance === clearance) throw new ClearanceUnchangedError(login, clearance);
      await this.d.accounts.setClearance(login, clearance);
      await this.d.audit.append([
        this.event('account.clearance-changed', officer, login, { from: a.clearance, to: clearance }),
      ]);
      await this.d.revokeForClearanceChange?.(login, officer);
    });
    await this.d.afterClearanceChange?.(login, officer);
    return this.d.accounts.require(login);
  }
}
