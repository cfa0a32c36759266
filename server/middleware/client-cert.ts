/**
 * Per-request check of the TLS client certificate.
 *
 * The TLS handshake already required a certificate chaining to the appliance CA
 * (`requestCert` + `rejectUnauthorized`). Revocation and validity at the *appliance's* clock are
 * checked here on every request, because a connection outlives a revocation and because tests
 * (and the appliance itself) own the clock. The certificate is parsed once per socket.
 *
 * This runs when a request starts; a long-lived response (the event stream) outlives it. Such a
 * response re-checks its session instead, and a session never outlives its certificate (the
 * session store caps its expiry at the certificate's notAfter at login).
 */
import type { TLSSocket } from 'node:tls';
import type { MiddlewareHandler } from 'hono';
import { Certificate } from '../../pki/index.js';
import type { CertificateRefusalReason } from '../auth/refusals.js';
import type { RevokedSet } from '../certs/certificate-store.js';
import type { IssuingRevocation } from '../certs/root-crl-watch.js';
import { CertExpiredError, CertNotYetValidError, CertRevokedError, ClientCertRequiredError, IssuingCaRevokedError } from './errors.js';
import type { AppEnv, ClientCert } from './types.js';

/**
 * Parsed certificates by fingerprint, shared by every socket presenting the same certificate and
 * bounded (least recently used out): a parsed certificate is ~50 KiB of ASN.1 objects, and an idle
 * live connection (SSE) must not pin one each (issue 8, bench/live). A socket remembers only the
 * fingerprint; a certificate evicted here is parsed again on its socket's next request.
 */
const PARSED_MAX = 256;
const parsed = new Map<string, ClientCert>();
const fingerprintOf = new WeakMap<object, string>();

/** Reads (and caches) the peer certificate of a TLS socket; undefined if there is none. */
export function peerCertificate(socket: unknown): ClientCert | undefined {
  if (typeof socket !== 'object' || socket === null) return undefined;
  const fp = fingerprintOf.get(socket);
  const hit = fp !== undefined ? parsed.get(fp) : undefined;
  if (hit) {
    parsed.delete(fp!);
    parsed.set(fp!, hit);
    return hit;
  }
  const tls = socket as Partial<TLSSocket>;
  if (typeof tls.getPeerX509Certificate !== 'function') return undefined;
  const x509 = tls.getPeerX509Certificate();
  if (!x509) return undefined;
  // Another socket of the same certificate (a second device tab, a reconnect): no second parse.
  const known = parsed.get(x509.fingerprint256.replaceAll(':', '').toLowerCase());
  if (known) {
    fingerprintOf.set(socket, known.fingerprint);
    return known;
  }
  const cert = Certificate.fromDer(new Uint8Array(x509.raw));
  const entry: ClientCert = { cert, fingerprint: cert.fingerprint, serial: cert.serialNumber };
  fingerprintOf.set(socket, entry.fingerprint);
  parsed.set(entry.fingerprint, entry);
  if (parsed.size > PARSED_MAX) parsed.delete(parsed.keys().next().value!);
  return entry;
}

/** Options of {@link clientCertificate}. */
export interface ClientCertOptions {
  revoked: RevokedSet;
  /** The issuing CA's revocation by the root CRL, once known (certs/root-crl-watch.ts). */
  issuingRevoked?: () => IssuingRevocation | undefined;
  now: () => Date;
  /**
   * Hears of each request refused here, before the error is thrown: the audit trail records
   * attempts with a revoked or out-of-date certificate (auth/refusals.ts bounds how many entries).
   */
  onRefused?: (cc: ClientCert, reason: CertificateRefusalReason, peer: string | null) => Promise<void>;
}

/**
 * What a client may still fetch with a certificate under a revoked issuing CA: the CA certificates
 * and both CRLs (readers learn of the revocation from `GET /v1/crl/root`) and the health check.
 */
function servedUnderRevokedCa(method: string, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && /^\/v1\/(?:ca|crl|health)(?:\/|$)/.test(path);
}

/** Why `cc` is refused now, with the error to throw; undefined when it is good. */
function refusalOf(cc: ClientCert, opts: ClientCertOptions, method: string, path: string): { reason: CertificateRefusalReason; error: Error } | undefined {
  if (opts.revoked.has(cc.serial)) return { reason: 'revoked', error: new CertRevokedError(cc.serial) };
  const ca = opts.issuingRevoked?.();
  if (ca && !servedUnderRevokedCa(method, path)) return { reason: 'issuing-ca-revoked', error: new IssuingCaRevokedError(ca.serial, ca.crlNumber) };
  const now = opts.now();
  if (cc.cert.notAfter.getTime() < now.getTime()) return { reason: 'expired', error: new CertExpiredError(cc.serial, cc.cert.notAfter, now) };
  if (cc.cert.notBefore.getTime() > now.getTime()) {
    return { reason: 'not-yet-valid', error: new CertNotYetValidError(cc.serial, cc.cert.notBefore, now) };
  }
  return undefined;
}

/**
 * Client-certificate middleware factory. Sets `clientCert`.
 * Throws CLIENT_CERT_REQUIRED, CERT_REVOKED, ISSUING_CA_REVOKED, CERT_EXPIRED or CERT_NOT_YET_VALID.
 */
export function clientCertificate(opts: ClientCertOptions): MiddlewareHandler<AppEnv> {
  return async function clientCertificateMiddleware(c, next) {
    const cc = peerCertificate(c.env?.incoming?.socket);
    if (!cc) throw new ClientCertRequiredError();
    const refusal = refusalOf(cc, opts, c.req.method, c.req.path);
    if (refusal) {
      await opts.onRefused?.(cc, refusal.reason, c.env?.incoming?.socket?.remoteAddress ?? null);
      throw refusal.error;
    }
    c.set('clientCert', cc);
    await next();
  };
}
