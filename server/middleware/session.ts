/**
 * Session middleware: `Authorization: Bearer <token>` → principal (session + account).
 *
 * The token must have been issued over the same TLS client certificate (fingerprint binding), the
 * account must not be disabled, and a session that still has to change the envelope password may
 * only reach routes that opt in (`allowPendingPasswordChange`).
 */
import type { MiddlewareHandler } from 'hono';
import type { AccountStore } from '../accounts/account-store.js';
import { AuthRequiredError, PasswordChangeRequiredError, SessionInvalidError } from '../auth/errors.js';
import type { SessionStore } from '../auth/session-store.js';
import type { AppEnv } from './types.js';

/** Options of {@link session}. */
export interface SessionOptions {
  sessions: SessionStore;
  accounts: AccountStore;
  /** Let a session with a pending envelope-password change through (first-login, logout, me). */
  allowPendingPasswordChange?: boolean;
}

const BEARER = /^Bearer ([A-Za-z0-9_-]{16,128})$/;

/**
 * Session middleware factory. Sets `principal`. Must run after `clientCertificate`.
 * Throws AUTH_REQUIRED, SESSION_INVALID, SESSION_EXPIRED or PASSWORD_CHANGE_REQUIRED.
 */
export function session(opts: SessionOptions): MiddlewareHandler<AppEnv> {
  return async function sessionMiddleware(c, next) {
    const header = c.req.header('authorization');
    if (header === undefined) throw new AuthRequiredError();
    const m = BEARER.exec(header);
    if (!m) throw new SessionInvalidError();
    // Both come from their stores' row caches, which every write keeps exact (vault/row-cache.ts):
    // a warm request reads no SQLite at all.
    const s = await opts.sessions.resolve(m[1], c.get('clientCert').fingerprint);
    const account = await opts.accounts.get(s.login);
    if (!account || account.status === 'disabled') throw new SessionInvalidError();
    if (account.mustChangePassword && !opts.allowPendingPasswordChange) throw new PasswordChangeRequiredError();
    c.set('principal', { session: s, account });
    await next();
  };
}
