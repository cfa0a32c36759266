/**
 * Renews the appliance's audit-signing certificate (`audit/audit.pem`) when the server opens. Init
 * issues it for 10 years, capped at the issuing CA's notAfter, so it ends with the issuing CA's
 * first certificate; once `sigil-server renew-issuing` has given the issuing CA a longer one, the
 * next start gives the audit key a longer certificate too. Without this the checkpoints would stop
 * verifying the day it expired.
 *
 * Rule: only when the issuing CA's certificate reaches further than this one (otherwise a new one
 * could end no later: nothing to gain, and `status` keeps warning, naming `renew-issuing`), and
 * then when it reaches more than {@link AUDIT_EXTEND_MS} further — which is the first start after
 * `renew-issuing`, however early the ceremony was held — or when this one is due by the TLS
 * certificate's rule ({@link tlsRenewalDue}: less than min(30 days, a third of its lifetime) left).
 * The same key and name: checkpoints already signed stay verifiable with either certificate, and
 * they embed the one they were signed with.
 *
 * Only at open, before the audit trail is built: the checkpointer holds the certificate in memory,
 * and the ceremony that makes a renewal possible needs the server stopped, so a start follows it.
 *
 * Order: the new certificate is written to a temp file, the `audit.cert.renewed` entry appended,
 * then the file renamed over `audit/audit.pem` (atomic). A crash before the rename leaves the old
 * certificate (valid for the same key) and an entry for a renewal that the next open repeats:
 * never a renewal without its entry.
 */
import { join } from 'node:path';
import type { Certificate, Issuer } from '../../pki/index.js';
import type { AuditSink } from '../auth/security-events.js';
import { replaceFilesAfter } from '../vault/index.js';
import { tlsRenewalDue } from './tls-renewer.js';

/** The issuing CA reaching this much further than the audit certificate makes the next open renew it. */
export const AUDIT_EXTEND_MS = 30 * 24 * 3600 * 1000;

/** What {@link renewAuditCertIfDue} needs. */
export interface AuditCertRenewal {
  dataDir: string;
  /** Relative path of the certificate (PATHS.auditCert). */
  certPath: string;
  cert: Certificate;
  issuer: Issuer;
  audit: AuditSink;
  now: () => Date;
  /**
   * Told of a renewal that failed while the current certificate is still valid (a full disk): the
   * open goes on with it, and the next open tries again. Without it, such a failure is thrown.
   */
  onError?: ((err: unknown) => void) | undefined;
}

/** The audit certificate to use: `r.cert`, or a renewed one already in place and audited. */
export async function renewAuditCertIfDue(r: AuditCertRenewal): Promise<Certificate> {
  const at = r.now();
  const further = r.issuer.cert.notAfter.getTime() - r.cert.notAfter.getTime();
  // An expired issuing CA issues nothing (IssuerExpiredError): keep what there is and let the
  // server start, where status and the refused certificates say what is wrong.
  if (at.getTime() >= r.issuer.cert.notAfter.getTime()) return r.cert;
  if (further <= 0 || (further <= AUDIT_EXTEND_MS && !tlsRenewalDue(r.cert, at))) return r.cert;
  try {
    return await renew(r, at);
  } catch (err) {
    // Refusing to start over a renewal that can wait would also stop what frees the disk
    // (deletions, sweeps); an expired certificate cannot sign checkpoints, so that one is thrown.
    if (!r.onError || r.cert.notAfter.getTime() <= at.getTime()) throw err;
    r.onError(err);
    return r.cert;
  }
}

/** One renewal: issued, its entry appended, then the file renamed into place (module comment). */
async function renew(r: AuditCertRenewal, at: Date): Promise<Certificate> {
  const renewed = await r.issuer.issueAuditCertificate({ commonName: r.cert.subject.commonName ?? 'Sigil audit log', publicKey: await r.cert.publicKey() });
  await replaceFilesAfter([{ path: join(r.dataDir, r.certPath), data: renewed.pem, mode: 0o644 }], () =>
    r.audit.append([
      {
        type: 'audit.cert.renewed',
        at,
        actor: 'system',
        subject: 'audit',
        detail: { previousSerial: r.cert.serialNumber, previousNotAfter: r.cert.notAfter.toISOString(), serial: renewed.serialNumber, notAfter: renewed.notAfter.toISOString() },
      },
    ]),
  );
  return renewed;
}
