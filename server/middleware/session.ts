/**
 * Session middleware: `Authorization: Bearer <token>` → principal (session + account).
 *
 * The token must have been issued over the same TLS client certificate (fingerprint binding), the
 * account must not be disabled, and a session that still has to change the envelope password may
 * only reach routes that opt in (`allowPendingPasswordChange`).
 *
 * Every SESSION_INVALID is reported to the session store's refusal listeners before it is thrown
 * (the login service writes them to the audit trail, aggregated: auth/refusals.ts) — above all a
 * token presented over another certificate than its own, the sign of a stolen token. Expired
 * sessions and a missing header are ordinary and are not reported.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { AccountStore } from '../accounts/account-store.js';
import { AuthRequiredError, PasswordChangeRequiredError, SessionInvalidError } from '../auth/errors.js';
import type { Session, SessionStore } from '../auth/session-store.js';
import type { AppEnv } from './types.js';

/** Options of {@link session}. */
export interface SessionOptions {
  sessions: SessionStore;
  accounts: AccountStore;
  /** Let a session with a pending envelope-password change through (first-login, logout, me). */
  allowPendingPasswordChange?: boolean;
}

const BEARER = /^Bearer ([A-Za-z0-9_-]{16,128})$/;

/** Reports `err` to the session store's refusal listeners, then throws it. */
async function refused(sessions: SessionStore, c: Context<AppEnv>, err: SessionInvalidError): Promise<never> {
  const cc = c.get('clientCert');
  await sessions.reportRefused({
    error: err,
    presented: { fingerprint: cc.fingerprint, serial: cc.serial },
    peer: c.env?.incoming?.socket?.remoteAddress ?? null,
  });
  throw err;
}

/**
 * Session middleware factory. Sets `principal`. Must run after `clientCertificate`.
 * Throws AUTH_REQUIRED, SESSION_INVALID, SESSION_EXPIRED or PASSWORD_CHANGE_REQUIRED.
 */
export function session(opts: SessionOptions): MiddlewareHandler<AppEnv> {
  return async function sessionMiddleware(c, next) {
    const header = c.req.header('authorization');
    if (header === undefined) throw new AuthRequiredError();
    const m = BEARER.exec(header);
    if (!m) return refused(opts.sessions, c, new SessionInvalidError('malformed'));
    let s: Session;
    try {
      // Both come from their stores' row caches, which every write keeps exact (vault/row-cache.ts):
      // a warm request reads no SQLite at all.
      s = await opts.sessions.resolve(m[1], c.get('clientCert').fingerprint);
    } catch (err) {
      if (err instanceof SessionInvalidError) return refused(opts.sessions, c, err);
      throw err;
    }
    const account = await opts.accounts.get(s.login);
    if (!account || account.status === 'disabled') {
      return refused(opts.sessions, c, new SessionInvalidError('account-disabled', { login: s.login, certSerial: s.certSerial }));
    }
    if (account.mustChangePassword && !opts.allowPendingPasswordChange) throw new PasswordChangeRequiredError();
    c.set('principal', { session: s, account });
    await next();
  };
}
