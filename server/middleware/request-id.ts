/**
 * Gives every request an id (echoed as `X-Request-Id` and in error bodies) and a logger that
 * carries it. Client-supplied ids are ignored: they would let a client write into our log.
 */
import { randomBytes } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../log.js';
import type { AppEnv } from './types.js';

/** Request-id middleware factory. */
export function requestId(log: Logger, random: (n: number) => Buffer = randomBytes): MiddlewareHandler<AppEnv> {
  return async function requestIdMiddleware(c, next) {
    const id = random(9).toString('base64url');
    c.set('requestId', id);
    c.set('log', log.child({ requestId: id }));
    c.header('X-Request-Id', id);
    await next();
  };
}
