/**
 * One access-log line per request: method, path, status, duration, login and peer, and what the
 * route added (`accessLogFields`: counts and codes). Never headers, query strings or bodies (they
 * may carry tokens or content).
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './types.js';

/** Access-log middleware factory. `clock` measures duration (monotonic by default). */
export function accessLog(clock: () => number = () => performance.now()): MiddlewareHandler<AppEnv> {
  return async function accessLogMiddleware(c, next) {
    const start = clock();
    await next();
    const principal = c.get('principal') as AppEnv['Variables']['principal'] | undefined;
    const extra = c.get('accessLogFields') as AppEnv['Variables']['accessLogFields'] | undefined;
    c.get('log').info('request', {
      ...extra,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((clock() - start) * 10) / 10,
      login: principal?.account.login,
      peer: c.env?.incoming?.socket?.remoteAddress,
    });
  };
}
