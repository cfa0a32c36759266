/**
 * The Hono environment shared by the app, its middleware and every route: node bindings
 * (`incoming`/`outgoing` from @hono/node-server) and per-request variables.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Certificate } from '../../pki/index.js';
import type { AccountRecord } from '../accounts/account-store.js';
import type { Session } from '../auth/session-store.js';
import type { LogFields, Logger } from '../log.js';

/** The TLS client certificate of this request, parsed once per socket. */
export interface ClientCert {
  cert: Certificate;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
  /** Serial, lower-case hex. */
  serial: string;
}

/** An authenticated caller. */
export interface Principal {
  session: Session;
  account: AccountRecord;
}

/** Variables set by middleware. `principal` only behind the session middleware. */
export interface AppVariables {
  requestId: string;
  log: Logger;
  clientCert: ClientCert;
  principal: Principal;
  /**
   * What a route adds to its request's access-log line (counts and codes, never content; the
   * logger keeps only its allowlisted fields): a batch of messages, answered 200 as a whole, says
   * how many were refused and why.
   */
  accessLogFields: LogFields;
}

/** Hono `Env` of the Sigil app. */
export interface AppEnv {
  Bindings: HttpBindings;
  Variables: AppVariables;
}
