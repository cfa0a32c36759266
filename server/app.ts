/**
 * `createApp(deps)`: the Sigil HTTP API as a Hono app. It never listens (main.ts / tls.ts do).
 *
 * Order of the global middleware: request id → access log → client certificate; then the body
 * limit on this module's routes.
 * Each resource is a sub-app mounted under `/v1/<resource>`; sessions and roles are applied by
 * the sub-apps, per route. One `onError` turns every thrown value into the error body.
 */
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Appliance } from './appliance.js';
import type { Config } from './config.js';
import { mapError, NotFoundError } from './errors.js';
import { errorFields, type Logger } from './log.js';
import { accessLog } from './middleware/access-log.js';
import { bodyLimit } from './middleware/body-limit.js';
import { clientCertificate } from './middleware/client-cert.js';
import { requestId } from './middleware/request-id.js';
import { unreadBody } from './middleware/unread-body.js';
import type { AppEnv } from './middleware/types.js';
import { authRoutes, meRoutes } from './routes/auth.js';
import { caRoutes } from './routes/ca.js';
import { certificatesRoutes } from './routes/certificates.js';
import { crlRoutes } from './routes/crl.js';
import { healthRoutes } from './routes/health.js';
import { usersRoutes } from './routes/users.js';
import { directoryRoutes } from './routes/directory.js';

/**
 * Dependencies of `createApp` and of every `xRoutes(deps)`. Later resources (messages, groups,
 * events, audit) take the same object; extend it with optional fields rather than new parameters.
 */
export interface AppDeps {
  appliance: Appliance;
  /** The appliance clock: every time check uses it (tests fake it). */
  now: () => Date;
  config: Config;
  log: Logger;
  /** Version reported by /v1/health. Default 0.1.0. */
  version?: string;
}

/** Mount points of this module's routes. */
const OWN_MOUNTS = ['/v1/health', '/v1/ca', '/v1/crl', '/v1/auth', '/v1/me', '/v1/directory', '/v1/users', '/v1/certificates'] as const;

/** Extra sub-apps to mount (for resources added by other modules), path → app. */
export type ExtraRoutes = Record<string, (deps: AppDeps) => Hono<AppEnv>>;

function toErrorWithCode(err: unknown): unknown {
  // hono's own HTTPExceptions (e.g. malformed requests) carry a status but no code.
  if (err instanceof HTTPException) {
    if (err.status === 413) return Object.assign(new Error('request body too large'), { code: 'BODY_TOO_LARGE' });
    if (err.status >= 400 && err.status < 500) return Object.assign(new Error('malformed request'), { code: 'BAD_REQUEST' });
  }
  return err;
}

/**
 * The Sigil API app.
 * @example
 * const app = createApp({ appliance, now: () => new Date(), config, log });
 * serve({ fetch: app.fetch, createServer: https.createServer, serverOptions });
 */
export function createApp(deps: AppDeps, extra: ExtraRoutes = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('*', unreadBody());
  app.use('*', requestId(deps.log));
  app.use('*', accessLog());
  app.use(
    '*',
    clientCertificate({
      revoked: deps.appliance.revoked,
      issuingRevoked: () => deps.appliance.rootCrlWatch?.revoked,
      now: deps.now,
      // Into the audit trail, bounded (auth/refusals.ts): a revoked certificate tried is an event.
      onRefused: (cc, reason, peer) => deps.appliance.loginService.certificateRefused(cc, reason, peer),
    }),
  );
  // The body limit guards this module's JSON routes. Extra routes (messages, files) stream large
  // bodies and enforce their own limits, so the buffering limit is not applied to them.
  const limit = bodyLimit(deps.config.bodyLimit);
  for (const base of OWN_MOUNTS) {
    app.use(base, limit);
    app.use(`${base}/*`, limit);
  }

  app.route('/v1/health', healthRoutes(deps));
  app.route('/v1/ca', caRoutes(deps));
  app.route('/v1/crl', crlRoutes(deps));
  app.route('/v1/auth', authRoutes(deps));
  app.route('/v1/me', meRoutes(deps));
  app.route('/v1/directory', directoryRoutes(deps));
  app.route('/v1/users', usersRoutes(deps));
  app.route('/v1/certificates', certificatesRoutes(deps));
  for (const [path, routes] of Object.entries(extra)) app.route(path, routes(deps));

  app.notFound((c) => {
    const mapped = mapError(new NotFoundError(), c.get('requestId') ?? 'none');
    return c.json(mapped.body, 404);
  });
  app.onError((err, c) => {
    const id = c.get('requestId') ?? 'none';
    const mapped = mapError(toErrorWithCode(err), id);
    const log = c.get('log') ?? deps.log;
    if (mapped.internal) log.error('internal error', { path: c.req.path, ...errorFields(err) });
    // A failure the client is told about in its own words (a full disk, a CRL not published): the
    // administrator needs the cause, which the answer leaves out.
    else if (mapped.status >= 500) log.error('request failed', { path: c.req.path, ...errorFields(err instanceof Error && err.cause ? err.cause : err) });
    else log.debug('request refused', { code: mapped.body.error.code });
    return c.json(mapped.body, mapped.status as 400);
  });
  return app;
}
