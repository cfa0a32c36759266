/**
 * `sigil-server init`: creates an appliance in an empty data directory — the CA (root + issuing),
 * the TLS and audit-signing certificates, the vault and its master-key protection, and the first
 * security officer (account, envelope, PKCS#12). Refuses to touch an existing appliance.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  createCaHierarchy,
  createRootCrl,
  exportPrivateKeyPem,
  generateKeyPair,
  Issuer,
  publicKeyFingerprint,
  type CryptoKey,
  type ProfileName,
} from '../pki/index.js';
import { assemble, KEYRING, PATHS, type ApplianceMeta, type MasterKeySource } from './appliance.js';
import { parseConfig, type ConfigInput } from './config.js';
import { ApplianceExistsError } from './errors.js';
import { assertLanListen, formatListen, parseListen } from './net/lan.js';
import { initVault } from './vault/index.js';
import { ROOT_CRL_AUDIT_TYPE, rootCrlAuditData } from './sign-root-crl.js';

/** Options of {@link initAppliance}. */
export interface InitOptions {
  dataDir: string;
  /** `host:port`, LAN only. Default 127.0.0.1:8443. */
  listen?: string;
  org?: string;
  profile?: ProfileName;
  /**
   * Master-key protection: a passphrase, or a path where a NEW key file is written. Default: a
   * key file generated at `DIR/secrets/master.key` (belongs on removable media in production).
   */
  masterKey?: MasterKeySource;
  /** Configuration written to `config.json` (listen and org are set from the options above). */
  config?: ConfigInput;
  /** Login of the first officer. Default `officer`. */
  officerLogin?: string;
  /**
   * Sign the root CA's CRL while the root key is in memory. Default true; false leaves the data
   * directory as appliances initialised before root CRLs were (tests of that upgrade path).
   */
  rootCrl?: boolean;
  now?: () => Date;
}

/** What `init --json` prints (scripts and tests rely on it). */
export interface InitResult {
  url: string;
  dataDir: string;
  listen: string;
  profile: ProfileName;
  org: string;
  /** `rootCrl`: the root's CRL (number 1, empty), signed while the root key is still in memory (absent with `rootCrl: false`). */
  ca: { root: string; chain: string; rootCrl?: string; rootKeyFile: string; rootKeyPassphrase: string };
  tls: { cert: string };
  audit: { cert: string };
  masterKey: { kind: 'keyfile'; keyFile: string; generated: boolean } | { kind: 'passphrase' };
  officer: {
    login: string;
    envelopePassword: string;
    envelopeSerial: string;
    envelopeText: string;
    envelopeHtml: string;
    p12: string;
    p12Password: string;
    certificateSerial: string;
  };
}

function writePrivate(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data, { mode: 0o600, flag: 'wx' });
}

function writePublic(path: string, data: string): void {
  writeFileSync(path, data, { mode: 0o644, flag: 'wx' });
}

async function pkcs8(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.exportKey('pkcs8', key));
}

/**
 * Creates the appliance. Throws ApplianceExistsError if `dataDir` is not empty, ListenInvalidError
 * / ListenPublicError for a bad `listen`, ConfigInvalidError, and vault/pki errors.
 */
export async function initAppliance(opts: InitOptions): Promise<InitResult> {
  const now = opts.now ?? (() => new Date());
  const dataDir = resolve(opts.dataDir);
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) throw new ApplianceExistsError(dataDir);
  const listenText = opts.listen ?? opts.config?.listen ?? '127.0.0.1:8443';
  const listen = parseListen(listenText);
  assertLanListen(listen);
  const org = opts.org ?? opts.config?.org ?? 'Sigil';
  const profile = opts.profile ?? 'p384';
  const config = parseConfig({ ...opts.config, listen: formatListen(listen), org }, 'init options');

  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const p = (rel: string) => join(dataDir, rel);
  const generatedKeyFile = opts.masterKey === undefined;
  const masterKey: MasterKeySource = opts.masterKey ?? { keyFilePath: p(PATHS.masterKeyFile) };
  let vault: Awaited<ReturnType<typeof initVault>> | undefined;
  try {
    for (const d of ['ca', 'tls', 'audit', 'secrets', PATHS.officerDir]) mkdirSync(join(dataDir, d), { mode: 0o700 });
    // Master key first: if it cannot be created, nothing else is written.
    vault = await initVault({ dir: p(PATHS.vault), ...masterKey, now } as Parameters<typeof initVault>[0]);
    const { root, issuing } = await createCaHierarchy({ profile, organization: org, now });
    const rootKeyPassphrase = randomBytes(24).toString('base64url');
    writePrivate(p(PATHS.rootKey), await exportPrivateKeyPem(root.key, rootKeyPassphrase));
    writePublic(p(PATHS.rootCert), root.cert.pem);
    writePublic(p(PATHS.issuingCert), issuing.cert.pem);
    writePublic(p(PATHS.chain), issuing.cert.pem + root.cert.pem);
    // The root's CRL (number 1, nothing revoked), now: after this the root key is offline, and
    // `openssl verify -crl_check_all` needs a CRL from the root for the issuing CA. Renewed at a
    // key ceremony (`sigil-server sign-root-crl`) before its nextUpdate (365 days, pki/root-crl.ts).
    const rootCrl = opts.rootCrl === false ? undefined : await createRootCrl({ cert: root.cert, key: root.key, crlNumber: 1n, thisUpdate: now() });
    if (rootCrl) writePublic(p(PATHS.rootCrl), rootCrl.pem);

    // TLS and audit identities are issued by the issuing CA; their keys go to the keyring only.
    const issuer = new Issuer({ cert: issuing.cert, key: issuing.key, chain: [issuing.cert, root.cert], now });
    const tlsKeys = await generateKeyPair(profile);
    const ips = [...new Set([listen.host, '127.0.0.1', '::1'])];
    const tlsCert = await issuer.issueTlsServerCertificate({
      publicKey: tlsKeys.publicKey,
      commonName: `${sigilLabel(org)} appliance`,
      dnsNames: ['localhost'],
      ipAddresses: ips,
    });
    const auditKeys = await generateKeyPair(profile);
    const auditCert = await issuer.issueAuditCertificate({
      publicKey: auditKeys.publicKey,
      commonName: `${sigilLabel(org)} audit log`,
    });
    writePublic(p(PATHS.tlsCert), tlsCert.pem);
    writePublic(p(PATHS.auditCert), auditCert.pem);
    await vault.keyring.putSecret(KEYRING.issuingKey, await pkcs8(issuing.key));
    await vault.keyring.putSecret(KEYRING.tlsKey, await pkcs8(tlsKeys.privateKey));
    await vault.keyring.putSecret(KEYRING.auditKey, await pkcs8(auditKeys.privateKey));

    const meta: ApplianceMeta = { version: 1, profile, org, createdAt: now().toISOString() };
    writePublic(p(PATHS.config), `${JSON.stringify(config, null, 2)}\n`);
    // appliance.json last: its presence means "initialised".
    const appliance = await assemble(dataDir, meta, config, vault, now);

    const officerLogin = opts.officerLogin ?? 'officer';
    const { envelope } = await appliance.accountService.create(
      { login: officerLogin, fullName: 'Security Officer', department: 'Security', clearance: 'top-secret', role: 'officer' },
      'system',
    );
    const p12 = await appliance.certificateService.issuePkcs12(officerLogin, 'system');
    await appliance.certificateService.publishCrl('system');
    await appliance.audit.append([
      { type: 'appliance.initialised', at: now(), actor: 'system', detail: { profile, listen: formatListen(listen) } },
    ]);
    // The root CRL signed above, in the trail like every later one (sign-root-crl.ts): the
    // ceremony numbers its CRLs above every number the trail has seen.
    if (rootCrl) {
      await appliance.auditLog.append([
        { type: ROOT_CRL_AUDIT_TYPE, actor: 'system', data: rootCrlAuditData(rootCrl, issuing.cert, await publicKeyFingerprint(root.key)) },
      ]);
    }
    const officerDir = p(PATHS.officerDir);
    writePrivate(join(officerDir, 'officer.p12'), p12.p12);
    writePrivate(join(officerDir, 'envelope.txt'), envelope.text);
    writePrivate(join(officerDir, 'envelope.html'), envelope.html);
    writePublic(p(PATHS.meta), `${JSON.stringify(meta, null, 2)}\n`);
    await appliance.close();

    return {
      url: `https://${formatListen(listen)}`,
      dataDir,
      listen: formatListen(listen),
      profile,
      org,
      ca: { root: p(PATHS.rootCert), chain: p(PATHS.chain), ...(rootCrl ? { rootCrl: p(PATHS.rootCrl) } : {}), rootKeyFile: p(PATHS.rootKey), rootKeyPassphrase },
      tls: { cert: p(PATHS.tlsCert) },
      audit: { cert: p(PATHS.auditCert) },
      masterKey:
        masterKey.keyFilePath !== undefined
          ? { kind: 'keyfile', keyFile: resolve(masterKey.keyFilePath), generated: generatedKeyFile }
          : { kind: 'passphrase' },
      officer: {
        login: officerLogin,
        envelopePassword: envelope.password,
        envelopeSerial: envelope.serial,
        envelopeText: join(officerDir, 'envelope.txt'),
        envelopeHtml: join(officerDir, 'envelope.html'),
        p12: join(officerDir, 'officer.p12'),
        p12Password: p12.password,
        certificateSerial: p12.certificate.serialNumber,
      },
    };
  } catch (err) {
    await vault?.close().catch(() => undefined);
    // The directory was empty when we started: leave it empty, so init can be retried.
    for (const entry of readdirSync(dataDir)) rmSync(join(dataDir, entry), { recursive: true, force: true });
    throw err;
  }
}

/** "Ministry Sigil", or just the organisation when it is already called Sigil (no "Sigil Sigil"). */
function sigilLabel(org: string): string {
  const short = org.slice(0, 40);
  return /\bsigil\b/i.test(short) ? short : `${short} Sigil`;
}
