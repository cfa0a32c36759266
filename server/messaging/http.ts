/**
 * Glue between the HTTP shell and messaging, shared by the messaging route files: the deps the
 * route factories take, the session middleware they mount, the principal they pass on, and an
 * adapter building {@link MessagingParts} from the opened appliance.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { isClearance, type Clearance } from '../../pki/index.js';
import { accountStatus } from '../accounts/account-store.js';
import type { Appliance } from '../appliance.js';
import { mapError, type MappedError } from '../errors.js';
import { errorFields, type LogFields } from '../log.js';
import { AuditLog } from '../audit/index.js';
import { bodyLimit } from '../middleware/body-limit.js';
import { session } from '../middleware/session.js';
import type { AppEnv } from '../middleware/types.js';
import { MessagingError } from './errors.js';
import { checkPool } from './check-pool.js';
import { keyedHashFromKeyring, type Messaging } from './index.js';
import type { BatchOutcome, Receipt } from './messages.js';
import type { Directory, MessagingConfig, MessagingParts, Principal } from './ports.js';

/** What every messaging route factory needs: the appliance (sessions, accounts) and the service. */
export interface MessagingRouteDeps {
  appliance: Pick<Appliance, 'sessions' | 'accounts'>;
  messaging: Messaging;
}

/**
 * The status and error body of a messaging failure: messaging errors answer with their own
 * `status` (so they map correctly even before `server/errors.ts` lists their codes); everything
 * else goes through the shell's one mapping, `mapError`, exactly as `app.onError` would. Used by
 * {@link messagingErrorHandler} and for each refused message of a batch.
 */
export function messagingErrorOf(err: unknown, requestId: string): MappedError {
  if (err instanceof MessagingError && err.status < 500) {
    return { status: err.status, body: { error: { code: err.code, message: err.message, requestId } }, internal: false };
  }
  let e: unknown = err;
  if (err instanceof HTTPException) {
    e = Object.assign(new Error(err.status === 413 ? 'request body too large' : 'malformed request'), {
      code: err.status === 413 ? 'BODY_TOO_LARGE' : 'BAD_REQUEST',
    });
  }
  return mapError(e, requestId);
}

/** The answer of one message of a batch or a stream: its receipt, or its refusal with the status `POST /v1/messages` would give. */
export type MessageAnswer = { receipt: Receipt } | { error: { code: string; message: string; status: number } };

/**
 * Answers the messages of one request (a batch, or a stream's lines) and counts what they got, for
 * its access-log line: the request itself answers 200 whatever its messages got, so a run of bad
 * signatures inside batches or streams is as visible in the log as one of 422s.
 */
export class MessageAnswers {
  accepted = 0;
  refused = 0;
  readonly #codes = new Map<string, number>();

  /** `logInternal` hears of an outcome the shell cannot map (it is answered INTERNAL). */
  constructor(
    readonly requestId: string,
    readonly logInternal: (err: unknown) => void,
  ) {}

  answer(o: BatchOutcome): MessageAnswer {
    if (o.ok) {
      this.accepted++;
      return { receipt: o.receipt };
    }
    this.refused++;
    const mapped = messagingErrorOf(o.error, this.requestId);
    if (mapped.internal) this.logInternal(o.error);
    const { code, message } = mapped.body.error;
    this.#codes.set(code, (this.#codes.get(code) ?? 0) + 1);
    return { error: { code, message, status: mapped.status } };
  }

  /** The access-log fields: counts and refusal codes ("CODE:n,…"), never content. */
  logFields(): LogFields {
    return {
      count: this.accepted + this.refused,
      accepted: this.accepted,
      refused: this.refused,
      codes: [...this.#codes].map(([code, n]) => `${code}:${n}`).join(','),
    };
  }
}

/** `onError` of the messaging sub-apps (see {@link messagingErrorOf}); internal errors are logged. */
export function messagingErrorHandler(err: Error, c: Context<AppEnv>): Response {
  const mapped = messagingErrorOf(err, c.get('requestId') ?? 'none');
  if (mapped.internal) c.get('log')?.error('internal error', { path: c.req.path, ...errorFields(err) });
  return c.json(mapped.body, mapped.status as 400);
}

/** Limit of every messaging JSON body except a message's: deletion statements, group changes. */
export const SMALL_JSON_LIMIT = 64 * 1024;

/**
 * Body limit of the messaging JSON routes (413 BODY_TOO_LARGE, counted while streaming), sized
 * per request from the service's configuration: a message may carry `maxBodyBytes` as base64
 * plus its header and signature. Uploads (`/v1/files`) are limited by the service instead.
 */
export function messagingBodyLimit(deps: MessagingRouteDeps, kind: 'message' | 'small'): MiddlewareHandler<AppEnv> {
  let cached: { max: number; mw: MiddlewareHandler<AppEnv> } | undefined;
  return async function messagingBodyLimitMiddleware(c, next) {
    const max = kind === 'message' ? messageBodyLimitBytes(deps.messaging.config) : SMALL_JSON_LIMIT;
    if (cached?.max !== max) cached = { max, mw: bodyLimit(max) };
    return cached.mw(c, next);
  };
}

/**
 * The most a message's JSON may take: `maxBodyBytes` as base64 plus room for its header and
 * signature. The limit of `POST /v1/messages`, of a whole batch, and of one line of a stream.
 */
export function messageBodyLimitBytes(config: Pick<MessagingConfig, 'maxBodyBytes'>): number {
  return Math.ceil(config.maxBodyBytes / 3) * 4 + 256 * 1024;
}

/** The session middleware, as the shell's other routes use it. */
export function requireSession(deps: MessagingRouteDeps): MiddlewareHandler<AppEnv> {
  return session({ sessions: deps.appliance.sessions, accounts: deps.appliance.accounts });
}

/** The messaging principal of a request behind {@link requireSession}: account + TLS certificate. */
export function principalOf(c: Context<AppEnv>): Principal {
  const { account } = c.get('principal');
  return {
    login: account.login,
    role: account.role,
    clearance: account.clearance,
    certificate: c.get('clientCert').cert,
  };
}

/**
 * The account and certificate stores as messaging's {@link Directory}: a person is active when
 * their account is, and their clearance is the one in their newest active, unexpired certificate.
 */
export function directoryFrom(appliance: Pick<Appliance, 'accounts' | 'certificates'>, now: () => Date): Directory {
  return {
    async person(login) {
      const a = await appliance.accounts.get(login);
      if (!a) return undefined;
      const at = now();
      const certs = (await appliance.certificates.ofLogin(login)).filter(
        (c) => c.status === 'active' && c.notAfter.getTime() > at.getTime() && c.notBefore.getTime() <= at.getTime(),
      );
      const newest = certs[certs.length - 1];
      const cl: Clearance | undefined = newest && isClearance(newest.clearance) ? newest.clearance : undefined;
      return { login, role: a.role, active: accountStatus(a, at) === 'active', certificateClearance: cl };
    },
  };
}

/**
 * Everything `createMessaging` needs, from an opened appliance: vault.db, keys.db, the account
 * directory, the RFC 9162 audit log on vault.db (so accepted messages and tombstones are Merkle
 * entries) and the keyed hash under the keyring's `audit-hmac` secret.
 *
 * @example
 * const messaging = createMessaging(await messagingPartsFrom(appliance, now));
 * await messaging.start();
 */
export async function messagingPartsFrom(
  appliance: Pick<Appliance, 'vault' | 'accounts' | 'certificates'>,
  now: () => Date,
  config: Partial<MessagingConfig> = {},
  log?: MessagingParts['log'],
): Promise<MessagingParts> {
  const { vault } = appliance;
  const keyedHash = await keyedHashFromKeyring(vault.keyring);
  return {
    db: vault.db,
    keys: vault.keys,
    directory: directoryFrom(appliance, now),
    audit: await AuditLog.open(vault.db, { now }),
    keyedHash,
    // The same secret in the worker threads that check messages (keyedHashFromKeyring created it).
    checker: checkPool().checker(await vault.keyring.getSecret('audit-hmac')),
    // Deletions release it on a full disk; new data waits while it is released.
    reserve: vault.reserve,
    now,
    config,
    ...(log ? { log } : {}),
  };
}
