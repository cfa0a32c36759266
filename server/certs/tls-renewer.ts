/**
 * Renews the appliance's own TLS server certificate before it expires. Init issues it for 825
 * days; nothing else ever issued one, so 825 days after init every client handshake failed
 * until someone re-initialised the appliance.
 *
 * Rule ({@link tlsRenewalDue}): a certificate is renewed once less than
 * min({@link TLS_RENEW_BEFORE_MS} = 30 days, a third of its lifetime) is left — or it has
 * expired. The new one has the current one's subject common name and subjectAltNames (read from
 * it), a fresh key pair of the appliance's profile, and the issuer's default validity (825 days).
 * The check runs at open (before the listener starts) and then every `checkEveryMs` on an unref'd
 * timer, judged at the appliance's clock; a renewal while serving is handed to the listener
 * (`onRenewed`), which swaps its secure context: handshakes after it get the new certificate,
 * connections already open keep theirs.
 *
 * Crash safety. The pair (keyring `KEYRING.tlsKey`, `tls/server.pem`) must match at every
 * instant a crash can happen, and the two live in different places (vault.db and a file), so
 * one renewal writes in this order:
 *   1. the new key to the keyring under {@link TLS_KEY_STAGED} (the served key untouched);
 *   2. the certificate to `tls/server.pem.next`, fsync, rename over `tls/server.pem` (atomic);
 *   3. one vault.db transaction: the staged key replaces `KEYRING.tlsKey`, the staged name is
 *      deleted, and the `tls.renewed` audit entry is appended (they commit together).
 * {@link recoverTlsRenewal} runs at every open before the pair is read and finishes or undoes
 * whatever a crash left: a staged key whose public key is the certificate's (crash between 2
 * and 3) is promoted with its audit entry (`recovered: true`, the old serial is no longer
 * known); a staged key that is not (crash before the rename) is discarded, with any leftover
 * `server.pem.next`. So after a crash at any point the appliance starts with the old pair or the
 * new pair, never a mix, and a completed renewal always has its audit entry. A pair that matches
 * neither way (a backup taken across a renewal) is renewed at open rather than served broken.
 *
 * Renewals are one at a time (a check under way is joined, not doubled); the keyring writes go
 * through the vault's transaction mutex like every other keyring write.
 */
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Certificate,
  exportPrivateKeyPem,
  exportPublicKeySpki,
  generateKeyPair,
  importPrivateKeyPkcs8,
  type CryptoKey,
  type Issuer,
  type ProfileName,
} from '../../pki/index.js';
import type { AuditSink, SecurityEvent } from '../auth/security-events.js';
import { renameDurable, writeSynced, type Db, type Keyring } from '../vault/index.js';
import { PeriodicCheck } from '../periodic-check.js';

/** Renew when less than this is left (or a third of the lifetime, when that is shorter). */
export const TLS_RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;
/** Default real milliseconds between checks while the server runs: 6 hours. */
export const DEFAULT_TLS_CHECK_MS = 6 * 3600 * 1000;
/** Keyring name of a new TLS key between steps 1 and 3 of a renewal (see the module comment). */
export const TLS_KEY_STAGED = 'tls.server.next.pkcs8';
/** Suffix of the certificate file being written before its rename. */
export const TLS_CERT_TEMP_SUFFIX = '.next';

/** The TLS identity for node's TLS: leaf, leaf + issuing CA, and the key (only in memory). */
export interface TlsMaterial {
  certPem: string;
  chainPem: string;
  keyPem: string;
}

/** Builds {@link TlsMaterial} from the certificate, the issuing CA and the key. */
export async function tlsMaterial(cert: Certificate, issuingCert: Certificate, key: CryptoKey): Promise<TlsMaterial> {
  return { certPem: cert.pem, chainPem: cert.pem + issuingCert.pem, keyPem: await exportPrivateKeyPem(key) };
}

/** True when `cert` has less than min(30 days, a third of its lifetime) left at `at`, or has expired. */
export function tlsRenewalDue(cert: Certificate, at: Date): boolean {
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
  const threshold = Math.min(TLS_RENEW_BEFORE_MS, Math.floor(lifetime / 3));
  return cert.notAfter.getTime() - at.getTime() < threshold;
}

/** What one renewal did. */
export interface TlsRenewal {
  previous: { serial: string; notAfter: Date } | null;
  cert: Certificate;
  /** True when {@link recoverTlsRenewal} finished a renewal a crash interrupted. */
  recovered: boolean;
}

/** Where the renewer reads and writes. */
export interface TlsRenewalTarget {
  dataDir: string;
  /** Relative path of the certificate (PATHS.tlsCert). */
  certPath: string;
  /** Keyring name of the served key (KEYRING.tlsKey). */
  keyName: string;
  db: Db;
  keyring: Keyring;
  audit: AuditSink;
  now: () => Date;
}

async function samePublicKey(cert: Certificate, pkcs8: Uint8Array): Promise<boolean> {
  const spki = await exportPublicKeySpki(await importPrivateKeyPkcs8(pkcs8));
  return Buffer.from(spki).equals(Buffer.from(cert.publicKeySpki));
}

async function readCert(t: TlsRenewalTarget): Promise<Certificate> {
  const fh = await open(join(t.dataDir, t.certPath), 'r');
  try {
    return Certificate.fromPem(await fh.readFile('utf8'));
  } finally {
    await fh.close();
  }
}

/** Step 3 (and its recovery): staged key → served key, with the audit entry, in one transaction. */
async function promote(t: TlsRenewalTarget, staged: Uint8Array, r: TlsRenewal): Promise<void> {
  const event: SecurityEvent = {
    type: 'tls.renewed',
    at: t.now(),
    actor: 'system',
    subject: 'tls',
    detail: {
      serial: r.cert.serialNumber,
      notAfter: r.cert.notAfter.toISOString(),
      previousSerial: r.previous?.serial ?? null,
      previousNotAfter: r.previous?.notAfter.toISOString() ?? null,
      ...(r.recovered ? { recovered: true } : {}),
    },
  };
  await t.db.transaction(async () => {
    await t.keyring.putSecret(t.keyName, staged, { replace: true });
    await t.keyring.deleteSecret(TLS_KEY_STAGED);
    await t.audit.append([event]);
  });
}

/**
 * Finishes or undoes a renewal a crash interrupted (see the module comment). Run at open before
 * the key and certificate are read.
 * @returns the renewal it finished, or undefined (nothing staged, or a staged key discarded).
 */
export async function recoverTlsRenewal(t: TlsRenewalTarget): Promise<TlsRenewal | undefined> {
  await rm(join(t.dataDir, t.certPath + TLS_CERT_TEMP_SUFFIX), { force: true });
  if (!(await t.keyring.hasSecret(TLS_KEY_STAGED))) return undefined;
  const staged = await t.keyring.getSecret(TLS_KEY_STAGED);
  const cert = await readCert(t);
  if (!(await samePublicKey(cert, staged))) {
    await t.keyring.deleteSecret(TLS_KEY_STAGED);
    return undefined;
  }
  const r: TlsRenewal = { previous: null, cert, recovered: true };
  await promote(t, staged, r);
  return r;
}

/** Test seam: called after each numbered step of {@link renewTlsCertificate}; a throw stops it there. */
export type TlsRenewalHook = (step: 'staged' | 'renamed') => void | Promise<void>;

/**
 * Issues a new TLS certificate like the current one (subject CN and SANs) for a fresh key pair
 * and installs it in the three steps of the module comment.
 * @throws pki errors, vault errors, file-system errors; whatever was written is then recovered at the next open.
 */
export async function renewTlsCertificate(
  t: TlsRenewalTarget & { issuer: Issuer; profile: ProfileName; afterStep?: TlsRenewalHook },
): Promise<TlsRenewal> {
  const current = await readCert(t);
  const keys = await generateKeyPair(t.profile);
  const names = current.subjectAltNames;
  const cert = await t.issuer.issueTlsServerCertificate({
    publicKey: keys.publicKey,
    commonName: current.subject.commonName ?? 'Sigil appliance',
    dnsNames: names.dns,
    ipAddresses: names.ip,
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  // 1. Stage the key.
  await t.keyring.putSecret(TLS_KEY_STAGED, pkcs8, { replace: true });
  await t.afterStep?.('staged');
  // 2. The certificate: temp file, fsync, rename, fsync the directory. Mode as init writes it.
  const path = join(t.dataDir, t.certPath);
  const temp = path + TLS_CERT_TEMP_SUFFIX;
  writeSynced(temp, cert.pem, 0o644);
  renameDurable(temp, path);
  await t.afterStep?.('renamed');
  // 3. Promote the key with the audit entry.
  const r: TlsRenewal = { previous: { serial: current.serialNumber, notAfter: current.notAfter }, cert, recovered: false };
  await promote(t, pkcs8, r);
  return r;
}

/** A due renewal that would not extend the certificate: the issuing CA ends first (reported, never thrown to a caller). */
export class TlsRenewalBlockedError extends Error {
  readonly code = 'TLS_RENEWAL_BLOCKED';
}

/** Options of {@link TlsRenewer}. */
export interface TlsRenewerOptions {
  target: TlsRenewalTarget & { issuer: Issuer; profile: ProfileName; issuingCert: Certificate };
  /** The material being served (from assemble). */
  initial: TlsMaterial;
  /** Real milliseconds between checks (the timer's, not the appliance clock's). */
  checkEveryMs: number;
  /** Told of each renewal (after the new material is current). */
  onRenewed?: (r: TlsRenewal) => void;
  /** Told of a failed check; the next check tries again. */
  onError?: (err: unknown) => void;
  /** Test seam, see {@link TlsRenewalHook}. */
  afterStep?: TlsRenewalHook;
}

/**
 * The renewal timer and the current TLS material. `start()` recovers an interrupted renewal and
 * renews now if due (rejects on failure: the appliance should not serve a certificate it could not
 * check), then checks every `checkEveryMs`; `stop()` before the vault closes.
 */
export class TlsRenewer {
  readonly #o: TlsRenewerOptions;
  readonly #listeners = new Set<(m: TlsMaterial) => void>();
  #current: TlsMaterial;
  readonly #periodic: PeriodicCheck<TlsRenewal>;

  constructor(o: TlsRenewerOptions) {
    this.#o = o;
    this.#current = o.initial;
    this.#periodic = new PeriodicCheck({
      name: 'TlsRenewer',
      everyMs: o.checkEveryMs,
      check: (force) => this.#check(force),
      ...(o.onError ? { onError: o.onError } : {}),
    });
  }

  /** The TLS material to serve now. */
  get current(): TlsMaterial {
    return this.#current;
  }

  /** Calls `fn` with the new material after each renewal; returns the unsubscribe function. */
  subscribe(fn: (m: TlsMaterial) => void): () => void {
    this.#listeners.add(fn);
    return () => void this.#listeners.delete(fn);
  }

  /**
   * Recovers an interrupted renewal, renews if due, then starts the unref'd timer. Rejects when
   * recovery fails, or when the pair cannot be served (key and certificate differ, or it has
   * expired) and renewing fails; a due renewal of a still valid certificate that fails is only
   * reported (`onError`). Idempotent.
   */
  async start(): Promise<TlsRenewal | undefined> {
    if (this.#periodic.startedOrStopped) return undefined;
    const t = this.#o.target;
    const recovered = await recoverTlsRenewal(t);
    if (recovered) await this.#install(recovered);
    // A pair that still does not match (a backup whose certificate file and vault.db were taken on
    // either side of a renewal, a hand-edited file) cannot be served: renew it now.
    const mismatched = !(await samePublicKey(await readCert(t), await t.keyring.getSecret(t.keyName)));
    let renewed: TlsRenewal | undefined;
    if (mismatched || Certificate.fromPem(this.#current.certPem).notAfter <= t.now()) {
      renewed = await this.#periodic.run(true); // nothing servable without it: a failure stops the open
    } else {
      // Due but still valid: a failure (a full disk) must not keep the appliance from starting
      // with the certificate it has; the timer tries again, and whatever a failed attempt left is
      // finished or undone by the next open's recovery.
      renewed = await this.tick();
    }
    this.#periodic.startTimer();
    return renewed ?? recovered;
  }

  /** One check: renews when due. Joins a check under way. Never rejects (failures go to `onError`). */
  tick(): Promise<TlsRenewal | undefined> {
    return this.#periodic.tick();
  }

  /** Renews when due (or when forced); {@link PeriodicCheck} keeps two from running at once. */
  async #check(force: boolean): Promise<TlsRenewal | undefined> {
    const t = this.#o.target;
    const cert = Certificate.fromPem(this.#current.certPem);
    if (!force && !tlsRenewalDue(cert, t.now())) return undefined;
    // New certificates end with the issuing CA (pki/certificate-builder.ts): once the current one already does, a
    // renewal would only swap the key every check. Said, not done, until the CA is renewed.
    if (!force && t.issuer.cert.notAfter.getTime() <= cert.notAfter.getTime()) {
      throw new TlsRenewalBlockedError(
        `the TLS certificate expires at ${cert.notAfter.toISOString()} with the issuing CA, which a renewal cannot outlive: renew the issuing CA`,
      );
    }
    const r = await renewTlsCertificate({ ...t, afterStep: this.#o.afterStep });
    await this.#install(r);
    return r;
  }

  /** Reads the installed pair back from the keyring and the file, and makes it current. */
  async #install(r: TlsRenewal): Promise<void> {
    const t = this.#o.target;
    const key = await importPrivateKeyPkcs8(await t.keyring.getSecret(t.keyName));
    this.#current = await tlsMaterial(await readCert(t), t.issuingCert, key);
    this.#o.onRenewed?.(r);
    for (const fn of this.#listeners) {
      try {
        fn(this.#current);
      } catch (err) {
        this.#o.onError?.(err);
      }
    }
  }

  /** Stops the timer and waits for a check under way. Idempotent. */
  stop(): Promise<void> {
    return this.#periodic.stop();
  }
}
