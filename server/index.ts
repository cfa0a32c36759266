/**
 * server/: the public API of `sigil-server` for tests and tools (the binary is main.ts).
 * Other folders import only from here (and server/vault, server/audit, server/messaging through
 * their own index.ts).
 */
export { createApp, type AppDeps, type ExtraRoutes } from './app.js';
export {
  openAppliance,
  assemble,
  readMeta,
  PATHS,
  KEYRING,
  SERVER_MIGRATIONS,
  type Appliance,
  type ApplianceMeta,
  type MasterKeySource,
  type OpenApplianceOptions,
} from './appliance.js';
export { initAppliance, type InitOptions, type InitResult } from './init.js';
export { ConfigSchema, parseConfig, loadConfig, ConfigInvalidError, type Config, type ConfigInput } from './config.js';
export { listen, tlsServerOptions, type Listener, type ListenOptions } from './tls.js';
export { main, buildProgram, initSummary, EXIT, type MainIo } from './main.js';
export * from './errors.js';
export { createLogger, silentLogger, errorFields, SAFE_FIELDS, type Logger, type LogFields, type LogLevel } from './log.js';
export * from './net/index.js';
export type { AppEnv, AppVariables, ClientCert, Principal } from './middleware/types.js';
export { session, type SessionOptions } from './middleware/session.js';
export { requireRole } from './middleware/require-role.js';
export { parseJson, parseParams } from './middleware/validate.js';
export { loginStatement, envelopeReceiptStatement } from './auth/statements.js';
export { AuditLogSink, type SecurityEvent, type SecurityEventType, type AuditSink, type StoredSecurityEvent } from './auth/security-events.js';
export { ROLES, type Role, type AccountRecord, type AccountStatus } from './accounts/account-store.js';
export { accountView, type AccountView } from './accounts/account-service.js';
export {
  PasswordHasher,
  DEFAULT_ARGON2,
  ENVELOPE_ALPHABET,
  ENVELOPE_PASSWORD_BITS,
  generateEnvelopePassword,
  checkNewPassword,
  type Argon2Params,
} from './accounts/password.js';
export { type Envelope } from './accounts/envelope.js';
export { type CertificateRecord, REVOCATION_REASONS } from './certs/certificate-store.js';
