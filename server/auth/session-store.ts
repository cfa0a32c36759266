/**
 * Sessions: random bearer tokens, stored only as SHA-256 hashes, bound to the TLS client
 * certificate they were issued over, with idle and absolute timeouts. A session never outlives
 * that certificate: its absolute end is capped at the certificate's notAfter.
 *
 * A token has 256 random bits, so an unsalted SHA-256 is enough to make a stolen table useless
 * and lets the row be found by index (no secret comparison on a secret-dependent path).
 */
import { createHash, randomBytes } from 'node:crypto';
import { RowCache, type Queryable } from '../vault/index.js';
import { SessionExpiredError, SessionInvalidError } from './errors.js';

export const SESSION_MIGRATIONS = [
  {
    id: 'server/sessions-1',
    sql: `
CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY,
  login TEXT NOT NULL REFERENCES accounts(login),
  cert_fingerprint TEXT NOT NULL,
  cert_serial TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_used_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  ended_at TEXT,
  end_reason TEXT
) STRICT;
CREATE INDEX sessions_login ON sessions(login);
CREATE INDEX sessions_cert ON sessions(cert_serial);
`,
  },
] as const;

/** A live session. */
export interface Session {
  id: string;
  login: string;
  certFingerprint: string;
  certSerial: string;
  createdAt: Date;
  expiresAt: Date;
  /**
   * Milliseconds, by the store's clock when {@link SessionStore.resolve} answered, until the store
   * refuses this session unless it is used again first: to the earlier of `expiresAt` and the idle
   * deadline. Long-lived responses (the event stream) wait this long, then resolve again.
   */
  validForMs: number;
}

/** Why a session ended, kept on the row. */
export type SessionEndReason =
  | 'logout'
  | 'certificate-revoked'
  | 'issuing-ca-revoked'
  | 'account-disabled'
  | 'account-reset'
  | 'account-locked'
  | 'password-changed'
  /** A backup was restored (ops/restore-carry.ts): no session survives it. */
  | 'vault-restored';

interface SessionRow {
  token_hash: string;
  login: string;
  cert_fingerprint: string;
  cert_serial: string;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  ended_at: string | null;
  end_reason: string | null;
}

/** A bearer token refused by the session middleware, as reported to {@link SessionStore.onRefused} listeners. */
export interface TokenRefusal {
  error: SessionInvalidError;
  /** The TLS certificate the token came over. */
  presented: { fingerprint: string; serial: string };
  peer: string | null;
}

/** Options of {@link SessionStore}. */
export interface SessionStoreOptions {
  idleMs: number;
  absoluteMs: number;
  now: () => Date;
  random?: (n: number) => Buffer;
}

/** How stale `last_used_at` may get before a request rewrites it. */
export function touchIntervalMs(idleMs: number): number {
  return Math.min(60_000, Math.floor(idleMs / 10));
}

/** The id of the session a bearer token names (what the sessions table keys it by: its SHA-256). */
const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** Session rows kept in memory: every request resolves its own (vault/row-cache.ts). */
const CACHED_SESSIONS = 10_000;

/**
 * Creates, resolves and ends sessions. Rows read by id are cached; every write to the sessions
 * table goes through {@link SessionStore.#write}, which keeps that cache exact — a session ended
 * (logout, revocation, a disabled account) is refused by the very next request.
 */
export class SessionStore {
  readonly #cache = new RowCache<string, SessionRow>(CACHED_SESSIONS);

  constructor(
    private readonly db: Queryable,
    private readonly opts: SessionStoreOptions,
  ) {}

  readonly #endedListeners = new Set<() => void>();
  #announcing = false;
  readonly #refusedListeners = new Set<(r: TokenRefusal) => Promise<void>>();

  /**
   * Calls `listener` for every bearer token the session middleware refuses as SESSION_INVALID (the
   * login service audits them, auth/refusals.ts). Returns the unsubscribe.
   */
  onRefused(listener: (r: TokenRefusal) => Promise<void>): () => void {
    this.#refusedListeners.add(listener);
    return () => void this.#refusedListeners.delete(listener);
  }

  /**
   * Tells the {@link onRefused} listeners of a refused token; resolves once they have recorded it.
   * A listener that fails is passed over: the refusal's own answer must not change.
   */
  async reportRefused(r: TokenRefusal): Promise<void> {
    for (const l of this.#refusedListeners) await l(r).catch(() => undefined);
  }

  /**
   * Calls `listener` whenever sessions were ended (logout, reset, disable, revocation, clearance
   * change), once the transaction that ended them has settled. Long-lived responses (the event
   * stream) re-check their sessions then, instead of at their next keep-alive. Returns the unsubscribe.
   */
  onSessionsEnded(listener: () => void): () => void {
    this.#endedListeners.add(listener);
    return () => void this.#endedListeners.delete(listener);
  }

  #announceEnded(changes: number): void {
    if (changes === 0 || this.#endedListeners.size === 0 || this.#announcing) return;
    // Several endings before the transaction settles (a clearance change ends the sessions of each
    // certificate in turn) are announced once: a listener re-checks everything anyway.
    this.#announcing = true;
    this.db.whenSettled(() => {
      this.#announcing = false;
      for (const l of this.#endedListeners) l();
    });
  }

  /** Every write to the sessions table (one session by id, or every one: `undefined`), through the cache. */
  #write(id: string | undefined, sql: string, params: unknown[]): Promise<{ changes: number }> {
    return this.#cache.write(this.db, id, () => this.db.run(sql, params));
  }

  /**
   * Starts a session over the certificate `certFingerprint`/`certSerial`; the token is returned
   * once and never stored. The session expires after the absolute lifetime or at `certNotAfter`,
   * whichever comes first: the client-certificate check runs when a request starts, so a
   * long-lived response (the event stream) would otherwise keep delivering past the certificate's
   * end until the session's; its periodic re-check resolves the session and finds it expired.
   */
  async create(
    login: string,
    certFingerprint: string,
    certSerial: string,
    certNotAfter: Date,
  ): Promise<{ token: string; expiresAt: Date }> {
    const token = (this.opts.random ?? randomBytes)(32).toString('base64url');
    const now = this.opts.now();
    const expiresAt = new Date(Math.min(now.getTime() + this.opts.absoluteMs, certNotAfter.getTime()));
    const id = hashToken(token);
    await this.#write(
      id,
      `INSERT INTO sessions (token_hash, login, cert_fingerprint, cert_serial, created_at, last_used_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [id, login, certFingerprint, certSerial, now.toISOString(), now.toISOString(), expiresAt.toISOString()],
    );
    return { token, expiresAt };
  }

  /**
   * The session of `token` presented over the certificate `certFingerprint`; touches its idle
   * timer, unless `opts.touch` is false (a look that is no use of the session: an open stream's
   * re-checks, which must not keep an unattended session from idling out). Throws
   * `SessionInvalidError` (unknown, ended, other certificate) or `SessionExpiredError` (idle or
   * absolute timeout).
   */
  async resolve(token: string, certFingerprint: string, opts: { touch?: boolean } = {}): Promise<Session> {
    const id = hashToken(token);
    const row = await this.#cache.read(id, () => this.db.get<SessionRow>('SELECT * FROM sessions WHERE token_hash = ?', [id]));
    if (!row) throw new SessionInvalidError('unknown-token');
    // Another certificate first, ended or not: a token used away from its certificate is the
    // theft the audit trail must show, also when the session has ended since.
    if (row.cert_fingerprint !== certFingerprint || row.ended_at !== null) {
      const about = { login: row.login, certSerial: row.cert_serial, endReason: row.end_reason };
      throw new SessionInvalidError(row.cert_fingerprint !== certFingerprint ? 'other-certificate' : 'ended', about);
    }
    const now = this.opts.now();
    if (new Date(row.expires_at).getTime() <= now.getTime()) throw new SessionExpiredError('absolute');
    if (new Date(row.last_used_at).getTime() + this.opts.idleMs <= now.getTime()) throw new SessionExpiredError('idle');
    // Touch the idle timer at most every touchIntervalMs: a write (with a full sync) on every request
    // capped the whole appliance at ~300 requests/s (bench/messages, issue 8). The idle timeout is
    // then exact to within that interval, a tenth of the idle timeout or one minute at most.
    let lastUsed = new Date(row.last_used_at).getTime();
    if (opts.touch !== false && now.getTime() - lastUsed >= touchIntervalMs(this.opts.idleMs)) {
      await this.#write(id, 'UPDATE sessions SET last_used_at = ? WHERE token_hash = ?', [now.toISOString(), id]);
      lastUsed = now.getTime();
    }
    return {
      id,
      login: row.login,
      certFingerprint: row.cert_fingerprint,
      certSerial: row.cert_serial,
      createdAt: new Date(row.created_at),
      expiresAt: new Date(row.expires_at),
      validForMs: Math.min(new Date(row.expires_at).getTime(), lastUsed + this.opts.idleMs) - now.getTime(),
    };
  }

  /**
   * Whether the session `id` (its token hash) is still open: not ended (logout, revocation, a
   * disabled or reset account, a lock). Call it inside the transaction of a write the session asks
   * for, so that an ending that landed while the request ran is seen, not overwritten.
   */
  async isOpen(id: string): Promise<boolean> {
    const row = await this.#cache.read(id, () => this.db.get<SessionRow>('SELECT * FROM sessions WHERE token_hash = ?', [id]));
    return row !== undefined && row.ended_at === null;
  }

  /** Ends one session (by id = token hash). */
  async end(id: string, reason: SessionEndReason): Promise<void> {
    const r = await this.#write(id, 'UPDATE sessions SET ended_at = ?, end_reason = ? WHERE token_hash = ? AND ended_at IS NULL', [
      this.opts.now().toISOString(),
      reason,
      id,
    ]);
    this.#announceEnded(r.changes);
  }

  /** Ends every session of a login; returns how many. */
  async endForLogin(login: string, reason: SessionEndReason, exceptId?: string): Promise<number> {
    const r = await this.#write(
      undefined,
      'UPDATE sessions SET ended_at = ?, end_reason = ? WHERE login = ? AND ended_at IS NULL AND token_hash != ?',
      [this.opts.now().toISOString(), reason, login, exceptId ?? ''],
    );
    this.#announceEnded(r.changes);
    return r.changes;
  }

  /** Ends every open session (the issuing CA was revoked: no certificate of the appliance is valid); returns how many. */
  async endAll(reason: SessionEndReason): Promise<number> {
    const r = await this.#write(undefined, 'UPDATE sessions SET ended_at = ?, end_reason = ? WHERE ended_at IS NULL', [this.opts.now().toISOString(), reason]);
    this.#announceEnded(r.changes);
    return r.changes;
  }

  /** Ends every session opened over the certificate `serial`; returns how many. */
  async endForCertificate(serial: string, reason: SessionEndReason): Promise<number> {
    const r = await this.#write(
      undefined,
      'UPDATE sessions SET ended_at = ?, end_reason = ? WHERE cert_serial = ? AND ended_at IS NULL',
      [this.opts.now().toISOString(), reason, serial],
    );
    this.#announceEnded(r.changes);
    return r.changes;
  }
}
