/**
 * Separation of duties at the route: only the listed roles pass. Officers manage people and
 * certificates; auditors read metadata and the audit trail; nobody but the parties reads bodies
 * (enforced by the messaging routes, which never hand bodies to officer or auditor roles).
 */
import type { MiddlewareHandler } from 'hono';
import type { Role } from '../accounts/account-store.js';
import { ForbiddenError } from '../errors.js';
import type { AppEnv } from './types.js';

/**
 * Role middleware factory. Must run after `session`. Throws FORBIDDEN.
 * @throws RangeError at start-up if no role is given.
 */
export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv> {
  if (roles.length === 0) throw new RangeError('requireRole: name at least one role');
  return async function requireRoleMiddleware(c, next) {
    const role = c.get('principal').account.role;
    if (!roles.includes(role)) throw new ForbiddenError(roles, role);
    await next();
  };
}
