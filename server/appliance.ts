/**
 * The appliance at run time: the opened vault, the CA (issuing key unlocked from the keyring),
 * the TLS identity, the stores and services of accounts, login and certificates, and the audit
 * sink. `openAppliance` builds it from an initialised data directory; `createApp` serves it.
 *
 * Data directory layout (see init.ts):
 *   appliance.json         profile, organisation, created-at (no secrets)
 *   config.json            configuration (config.ts)
 *   vault/                 vault.db, keys.db, vault-key.json (server/vault)
 *   ca/root.pem, ca/issuing.pem, ca/chain.pem, ca/root-key.p8.pem (to move offline)
 *   tls/server.pem, audit/audit.pem   public certificates (their keys are in the keyring)
 *   secrets/master.key     generated master key file (belongs on removable media)
 *   officer/               the first officer's PKCS#12 and envelope
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import {
  Certificate,
  importPrivateKeyPkcs8,
  Issuer,
  PROFILE_NAMES,
  type CryptoKey,
  type ProfileName,
} from '../pki/index.js';
import { ACCOUNT_MIGRATIONS, AccountStore } from './accounts/account-store.js';
import { AccountService } from './accounts/account-service.js';
import { PasswordHasher } from './accounts/password.js';
import { LOCKOUT_MIGRATIONS, Lockout } from './auth/lockout.js';
import { loginHashFromKeyring } from './auth/login-hash.js';
import { LoginService } from './auth/login-service.js';
import { NonceStore } from './auth/nonce-store.js';
import { AuditLogSink } from './auth/security-events.js';
import { AuditLog } from './audit/index.js';
import { SESSION_MIGRATIONS, SessionStore } from './auth/session-store.js';
import { CERTIFICATE_MIGRATIONS, CertificateStore, RevokedSet } from './certs/certificate-store.js';
import { CrlNotPublishedError } from './certs/errors.js';
import { fillKeyHashes } from './certs/key-reuse.js';
import { CertificateService } from './certs/certificate-service.js';
import { CrlRefresher, defaultCrlCheckMs } from './certs/crl-refresher.js';
import { RootCrlWatch } from './certs/root-crl-watch.js';
import { renewAuditCertIfDue } from './certs/audit-cert-renewal.js';
import { DEFAULT_TLS_CHECK_MS, tlsMaterial, TlsRenewer, type TlsMaterial, type TlsRenewalHook } from './certs/tls-renewer.js';
import { createLogger, errorFields, type Logger } from './log.js';
import type { Config } from './config.js';
import { unlockVault, type MigrationHook, type Vault } from './vault/index.js';
import { RotationPendingError } from './errors.js';

/** File and directory names inside the data directory. */
export const PATHS = {
  meta: 'appliance.json',
  config: 'config.json',
  vault: 'vault',
  rootCert: 'ca/root.pem',
  issuingCert: 'ca/issuing.pem',
  chain: 'ca/chain.pem',
  rootKey: 'ca/root-key.p8.pem',
  /** The root CA's CRL (covers the issuing CA), signed at init and at each root key ceremony (`sign-root-crl`). */
  rootCrl: 'ca/root-crl.pem',
  tlsCert: 'tls/server.pem',
  auditCert: 'audit/audit.pem',
  masterKeyFile: 'secrets/master.key',
  officerDir: 'officer',
} as const;

/** Keyring secret names of the appliance's private keys (PKCS#8 DER, sealed under the master key). */
export const KEYRING = {
  issuingKey: 'ca.issuing.pkcs8',
  tlsKey: 'tls.server.pkcs8',
  auditKey: 'audit.signing.pkcs8',
} as const;

/** Every migration of the server's own tables, in order. */
export const SERVER_MIGRATIONS = [
  ...ACCOUNT_MIGRATIONS,
  ...CERTIFICATE_MIGRATIONS,
  ...SESSION_MIGRATIONS,
  ...LOCKOUT_MIGRATIONS,
];

/** `appliance.json`. */
export const ApplianceMetaSchema = z.object({
  version: z.literal(1),
  profile: z.enum(PROFILE_NAMES as unknown as [ProfileName, ...ProfileName[]]),
  org: z.string().min(1),
  createdAt: z.string(),
});
export type ApplianceMeta = z.infer<typeof ApplianceMetaSchema>;

/** How to unlock the master key. */
export type MasterKeySource = { keyFilePath: string; passphrase?: undefined } | { passphrase: string; keyFilePath?: undefined };

/** The running appliance. */
export interface Appliance {
  readonly dataDir: string;
  readonly meta: ApplianceMeta;
  readonly config: Config;
  readonly vault: Vault;
  readonly rootCert: Certificate;
  readonly issuingCert: Certificate;
  readonly issuer: Issuer;
  /**
   * TLS server identity for node's TLS (the key only in memory). In an appliance from
   * {@link openAppliance} it is the renewer's current material: it changes when the certificate
   * is renewed.
   */
  readonly tls: TlsMaterial;
  readonly auditCert: Certificate;
  /** The audit-signing key (for the audit module's checkpoints). */
  readonly auditKey: CryptoKey;
  /** Security events → the audit log. */
  readonly audit: AuditLogSink;
  /** The audit module's log itself (audit routes, checkpoints). */
  readonly auditLog: AuditLog;
  readonly accounts: AccountStore;
  readonly certificates: CertificateStore;
  readonly sessions: SessionStore;
  readonly nonces: NonceStore;
  readonly lockout: Lockout;
  readonly revoked: RevokedSet;
  readonly hasher: PasswordHasher;
  readonly accountService: AccountService;
  readonly loginService: LoginService;
  readonly certificateService: CertificateService;
  /**
   * Republishes the CRL before it goes stale (certs/crl-refresher.ts). Running in an appliance
   * from {@link openAppliance}; absent in the one init assembles.
   */
  readonly crlRefresher?: CrlRefresher;
  /**
   * Notices a root CRL that revokes the issuing CA (certs/root-crl-watch.ts); the client-certificate
   * check then refuses every request but the CA's and CRLs'. Running in an appliance from
   * {@link openAppliance}; absent in init's.
   */
  readonly rootCrlWatch?: RootCrlWatch;
  /**
   * Renews the TLS certificate before it expires (certs/tls-renewer.ts); the listener subscribes
   * to swap its certificate. Running in an appliance from {@link openAppliance}; absent in init's.
   */
  readonly tlsRenewer?: TlsRenewer;
  /** Stops the CRL refresher and the TLS renewer, then closes the vault (databases). Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openAppliance}. */
export interface OpenApplianceOptions {
  dataDir: string;
  config: Config;
  masterKey: MasterKeySource;
  now?: () => Date;
  /**
   * Hears of each migration applied while opening: keys.db's and the server's tables in vault.db
   * (messaging's own are announced by its start). An upgrade can take seconds per million messages.
   */
  onMigration?: ApplianceMigrationHook;
  /** Where the CRL refresher reports a republication or a failure. Default: JSON lines on stderr at `config.logLevel`. */
  log?: Logger;
  /** Real milliseconds between the CRL refresher's checks. Default {@link defaultCrlCheckMs}. */
  crlCheckEveryMs?: number;
  /** Real milliseconds between the root CRL watch's checks. Default 10 s (certs/root-crl-watch.ts). */
  rootCrlCheckEveryMs?: number;
  /** Real milliseconds between the TLS renewer's checks. Default {@link DEFAULT_TLS_CHECK_MS} (6 h). */
  tlsCheckEveryMs?: number;
  /** Test seam of the TLS renewal (a throw stops a renewal after that step, as a crash would). */
  tlsRenewalHook?: TlsRenewalHook;
  /** `start` released the disk reserve before its claim, on a full disk (vault `releaseReserveToOpen`). */
  reserveReleasedToOpen?: boolean;
}

/** A migration of `file` being applied at open: Db.migrate's hook, told which database it is in. */
export type ApplianceMigrationHook = (file: 'keys.db' | 'vault.db', ...applied: Parameters<MigrationHook>) => void;

/** Reads `appliance.json`. */
export async function readMeta(dataDir: string): Promise<ApplianceMeta> {
  const text = await readFile(join(dataDir, PATHS.meta), 'utf8');
  return ApplianceMetaSchema.parse(JSON.parse(text));
}

/**
 * Opens an initialised appliance: unlocks the vault, applies the server's migrations, unlocks the
 * issuing, TLS and audit keys from the keyring, and wires stores and services.
 * @throws vault errors (MASTER_KEY_WRONG, …), pki errors, or file-system errors for a broken data dir.
 */
export async function openAppliance(opts: OpenApplianceOptions): Promise<Appliance> {
  const now = opts.now ?? (() => new Date());
  const { dataDir, config } = opts;
  const meta = await readMeta(dataDir);
  const hook = opts.onMigration;
  const log = opts.log ?? createLogger({ level: config.logLevel });
  const vault = await unlockVault({
    dir: join(dataDir, PATHS.vault),
    ...opts.masterKey,
    now,
    reserve: {
      bytes: config.diskReserveBytes,
      heldBefore: opts.reserveReleasedToOpen === true,
      log: (event, fields) => (event === 'vault.reserve-made' ? log.info(event, fields) : log.warn(event, fields)),
    },
    ...(hook ? { keystore: { onMigration: (...applied) => hook('keys.db', ...applied) } } : {}),
  } as Parameters<typeof unlockVault>[0]);
  try {
    // Half the keys may already be wrapped under the new master key: serving now could not open them.
    if (vault.rotationPending) throw new RotationPendingError(dataDir);
    const appliance = await assemble(dataDir, meta, config, vault, now, hook, (err) =>
      log.error('audit certificate renewal failed; the current one stays in use and the next start tries again', errorFields(err)),
    );
    // The CRL is republished while the server runs, and now if the current one is half used or
    // stale (an appliance stopped for a week): readers fail every message on a stale CRL.
    // Before anyone is served: an appliance whose issuing CA the root revoked while it was stopped
    // refuses its certificates from the first request.
    const rootCrlWatch = new RootCrlWatch({
      file: join(dataDir, PATHS.rootCrl),
      rootCert: appliance.rootCert,
      issuingCert: appliance.issuingCert,
      ...(opts.rootCrlCheckEveryMs !== undefined ? { checkEveryMs: opts.rootCrlCheckEveryMs } : {}),
      onRevoked: async (r) => {
        log.error(
          `the root CRL ${r.crlNumber} revokes the issuing CA (serial ${r.serial}): every request with a certificate it issued is refused ` +
            'but those for the CA certificates and CRLs, and every session is ended',
          {},
        );
        await appliance.sessions.endAll('issuing-ca-revoked');
      },
      onIgnored: (why) => log.warn(why, {}),
      onError: (err) => log.error('reading the root CRL failed; the next check tries again', errorFields(err)),
    });
    await rootCrlWatch.start();
    const crlRefresher = new CrlRefresher({
      service: appliance.certificateService,
      checkEveryMs: opts.crlCheckEveryMs ?? defaultCrlCheckMs(config.crlValidityMs),
      onPublished: (crl) => log.info(`CRL ${crl.number} published, next update ${crl.nextUpdate.toISOString()}`, {}),
      onError: (err) => log.error('CRL republication failed; the next check tries again', errorFields(err)),
    });
    await crlRefresher.start();
    // The TLS certificate is renewed now if it is near expiry (or a crash interrupted a renewal:
    // that is finished or undone first), before anyone listens, and then checked every 6 h.
    const tlsRenewer = new TlsRenewer({
      target: {
        dataDir,
        certPath: PATHS.tlsCert,
        keyName: KEYRING.tlsKey,
        db: vault.db,
        keyring: vault.keyring,
        audit: appliance.audit,
        now,
        issuer: appliance.issuer,
        issuingCert: appliance.issuingCert,
        profile: meta.profile,
      },
      initial: appliance.tls,
      checkEveryMs: opts.tlsCheckEveryMs ?? DEFAULT_TLS_CHECK_MS,
      afterStep: opts.tlsRenewalHook,
      onRenewed: (r) =>
        log.info(`TLS certificate renewed: serial ${r.cert.serialNumber}, valid until ${r.cert.notAfter.toISOString()}`, {}),
      onError: (err) => log.error('TLS certificate renewal failed; the next check tries again', errorFields(err)),
    });
    try {
      await tlsRenewer.start();
    } catch (err) {
      await Promise.all([crlRefresher.stop(), rootCrlWatch.stop()]);
      throw err;
    }
    let closing: Promise<void> | undefined;
    return {
      ...appliance,
      get tls() {
        return tlsRenewer.current;
      },
      crlRefresher,
      tlsRenewer,
      rootCrlWatch,
      close: () =>
        (closing ??= Promise.all([crlRefresher.stop(), tlsRenewer.stop(), rootCrlWatch.stop()]).then(() => appliance.close())),
    };
  } catch (err) {
    await vault.close().catch(() => undefined);
    throw err;
  }
}

/** Wires an appliance over an already open vault (init uses it right after creating the vault). */
export async function assemble(
  dataDir: string,
  meta: ApplianceMeta,
  config: Config,
  vault: Vault,
  now: () => Date,
  onMigration?: ApplianceMigrationHook,
  onAuditCertError?: (err: unknown) => void,
): Promise<Appliance> {
  const db = vault.db;
  await db.migrate(SERVER_MIGRATIONS, onMigration ? { onApply: (...applied) => onMigration('vault.db', ...applied) } : {});
  const read = (p: string) => readFile(join(dataDir, p), 'utf8');
  const rootCert = Certificate.fromPem(await read(PATHS.rootCert));
  const issuingCert = Certificate.fromPem(await read(PATHS.issuingCert));
  const tlsCert = Certificate.fromPem(await read(PATHS.tlsCert));
  const storedAuditCert = Certificate.fromPem(await read(PATHS.auditCert));
  const issuingKey = await importPrivateKeyPkcs8(await vault.keyring.getSecret(KEYRING.issuingKey));
  const tlsKey = await importPrivateKeyPkcs8(await vault.keyring.getSecret(KEYRING.tlsKey));
  const auditKey = await importPrivateKeyPkcs8(await vault.keyring.getSecret(KEYRING.auditKey));
  const issuer = new Issuer({ cert: issuingCert, key: issuingKey, chain: [issuingCert, rootCert], now });

  const accounts = new AccountStore(db);
  const certificates = new CertificateStore(db);
  await fillKeyHashes(db, certificates); // rows from before migration server/certificates-2
  const sessions = new SessionStore(db, { idleMs: config.sessionIdleMs, absoluteMs: config.sessionAbsoluteMs, now });
  const nonces = new NonceStore({ ttlMs: config.nonceTtlMs, now });
  // Logins with no account are kept (lockout, audit trail) only as their keyed hash.
  const loginHash = await loginHashFromKeyring(vault.keyring);
  const lockout = new Lockout({ accounts, db, policy: config.lockout, now, loginHash });
  const revoked = await RevokedSet.load(certificates);
  const hasher = new PasswordHasher(config.argon2);
  const auditLog = await AuditLog.open(db, { now });
  const audit = new AuditLogSink(auditLog);
  const auditCert = await renewAuditCertIfDue({ dataDir, certPath: PATHS.auditCert, cert: storedAuditCert, issuer, audit, now, onError: onAuditCertError });
  const certificateService = new CertificateService({
    db,
    accounts,
    certificates,
    sessions,
    revoked,
    issuer,
    audit,
    now,
    org: meta.org,
    crlValidityMs: config.crlValidityMs,
  });
  const accountService = new AccountService({
    db,
    accounts,
    sessions,
    lockout,
    hasher,
    audit,
    now,
    org: meta.org,
    envelopeTtlMs: config.envelopeTtlMs,
    revokeForClearanceChange: (login, actor) => certificateService.revokeAllOf(login, 'superseded', actor),
    afterClearanceChange: async (login, actor) => {
      // The change and its revocations are committed by now: a failed CRL must not read "nothing was written".
      await certificateService.publishCrl(actor).catch((cause: unknown) => {
        throw new CrlNotPublishedError(`the clearance of ${login} is changed, the certificates of the old one are revoked`, cause);
      });
    },
    keepOfficerBesides: (login) => certificateService.keepOfficerBesides(login),
  });
  const decoyHash = await hasher.hash(Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64'));
  const loginService = new LoginService({
    db,
    accounts,
    certificates,
    sessions,
    nonces,
    lockout,
    hasher,
    audit,
    now,
    decoyHash,
    loginHash,
  });
  let closed: Promise<void> | undefined;
  return {
    dataDir,
    meta,
    config,
    vault,
    rootCert,
    issuingCert,
    issuer,
    tls: await tlsMaterial(tlsCert, issuingCert, tlsKey),
    auditCert,
    auditKey,
    audit,
    auditLog,
    accounts,
    certificates,
    sessions,
    nonces,
    lockout,
    revoked,
    hasher,
    accountService,
    loginService,
    certificateService,
    // The refusal counts not yet in the audit trail are written while the vault is still open.
    close: () => (closed ??= loginService.close().catch(() => undefined).then(() => vault.close())),
  };
}
