/**
 * What the audit log remembers of the CA's past, for both root key ceremonies (sign-root-crl.ts,
 * renew-issuing.ts): every certificate the issuing CA has had, and every serial a root CRL has
 * listed. The files in `ca/` say only the present — and a file can go missing or be put back
 * older — while a revocation must never be undone (RFC 5280 §3.3).
 *
 * - Renewal gives the issuing CA's one key and name a new serial; the old certificate stays valid
 *   until its own notAfter. Revoking the issuing CA therefore means listing every serial it has had
 *   (`ca.issuing.renewed` names each old and new one): a forged signature chained with an older
 *   certificate must fail too.
 * - Root CRL entries are taken back from `ca.root-crl.signed` entries: their `revocations` (date
 *   and reason, recorded since) or, for entries written before that, their serials, dated at the
 *   thisUpdate of the first CRL that listed them (the ceremony's time, whole seconds; at most one
 *   second before the date it recorded, so never later than the revocation).
 */
import { createHash } from 'node:crypto';
import { isRevocationReason, type Certificate, type RevokedEntry, type RevocationReason } from '../pki/index.js';
import type { Db } from './vault/index.js';

/** The audit entry of a root CRL signed (at init and at each ceremony). */
export const ROOT_CRL_AUDIT_TYPE = 'ca.root-crl.signed';

/** The audit entry of an issuing CA renewal. */
export const ISSUING_RENEWED_AUDIT_TYPE = 'ca.issuing.renewed';

/** SHA-256 (hex) of a certificate's SPKI: names its key in audit entries. */
export function spkiSha256(cert: Certificate): string {
  return createHash('sha256').update(cert.publicKeySpki).digest('hex');
}

/** The `data` of each audit entry of `type`, oldest first (index audit_log_type). */
async function auditData(db: Db, type: string): Promise<Record<string, unknown>[]> {
  const rows = await db.all<{ data: string }>('SELECT data FROM audit_log WHERE type = ? ORDER BY seq', [type]);
  return rows.map((r) => (JSON.parse(r.data) as { data?: Record<string, unknown> }).data ?? {});
}

const isSerial = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * Every serial the issuing CA has had: `current`'s and each one a renewal replaced or made. All
 * are the same key (renewal never re-keys), so what revokes one must revoke them all.
 */
export async function issuingSerials(db: Db, current: Certificate): Promise<string[]> {
  const serials = new Set([current.serialNumber]);
  for (const d of await auditData(db, ISSUING_RENEWED_AUDIT_TYPE)) {
    for (const s of [d['previousSerial'], d['serial']]) if (isSerial(s)) serials.add(s);
  }
  return [...serials];
}

/** A revocation the audit log remembers, with the number of the first root CRL that listed it. */
export interface AuditedRevocation extends RevokedEntry {
  crlNumber: number | undefined;
}

/** Every serial any root CRL listed, once each, from its first listing. */
export async function auditedRevocations(db: Db): Promise<AuditedRevocation[]> {
  const out = new Map<string, AuditedRevocation>();
  for (const d of await auditData(db, ROOT_CRL_AUDIT_TYPE)) {
    const crlNumber = typeof d['crlNumber'] === 'number' ? d['crlNumber'] : undefined;
    const signedAt = typeof d['thisUpdate'] === 'string' ? new Date(d['thisUpdate']) : undefined;
    const recorded = Array.isArray(d['revocations']) ? (d['revocations'] as Record<string, unknown>[]) : [];
    for (const r of recorded) {
      const date = typeof r['revocationDate'] === 'string' ? new Date(r['revocationDate']) : signedAt;
      if (!isSerial(r['serialNumber']) || out.has(r['serialNumber']) || !date || Number.isNaN(date.getTime())) continue;
      out.set(r['serialNumber'], { serialNumber: r['serialNumber'], revocationDate: date, reason: reasonOf(r['reason']), crlNumber });
    }
    for (const s of Array.isArray(d['revoked']) ? d['revoked'] : []) {
      if (!isSerial(s) || out.has(s) || !signedAt || Number.isNaN(signedAt.getTime())) continue;
      // Only the ceremony's --revoke-issuing adds entries, always as keyCompromise.
      out.set(s, { serialNumber: s, revocationDate: signedAt, reason: 'keyCompromise', crlNumber });
    }
  }
  return [...out.values()];
}

/**
 * The SPKI hashes of the issuing CA keys a root CRL revoked, as its audit entries name them
 * (`issuingSpkiSha256` of an entry with `issuingRevoked`; recorded since), so a certificate for a
 * revoked key is known even when its serial was never listed.
 */
export async function revokedIssuingKeys(db: Db): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const d of await auditData(db, ROOT_CRL_AUDIT_TYPE)) {
    if (d['issuingRevoked'] === true && typeof d['issuingSpkiSha256'] === 'string') keys.add(d['issuingSpkiSha256']);
  }
  return keys;
}

function reasonOf(v: unknown): RevocationReason {
  return isRevocationReason(v) ? v : 'keyCompromise';
}

/** The CRL number of the newest `ca.root-crl.signed` entry; 0 when there is none. */
export async function lastAuditedCrlNumber(db: Db): Promise<bigint> {
  const row = await db.get<{ data: string }>('SELECT data FROM audit_log WHERE type = ? ORDER BY seq DESC LIMIT 1', [ROOT_CRL_AUDIT_TYPE]);
  if (!row) return 0n;
  const n = (JSON.parse(row.data) as { data?: { crlNumber?: unknown } }).data?.crlNumber;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? BigInt(n) : 0n;
}

/**
 * The entries a new root CRL lists: those of `listed` (all kept), and every serial of the issuing
 * CA (`lineage`) once one of them is listed or `revokeIssuing` asks — dated as the earliest listed
 * one, else `now` rounded up to a whole second (a CRL holds whole seconds, as for the issuing CA's).
 * `added` names the serials this put on the list.
 */
export function withIssuingRevoked(listed: readonly RevokedEntry[], lineage: readonly string[], revokeIssuing: boolean, now: Date): { revoked: RevokedEntry[]; added: string[] } {
  const revoked = [...listed];
  const first = listed.filter((e) => lineage.includes(e.serialNumber)).sort((a, b) => a.revocationDate.getTime() - b.revocationDate.getTime())[0];
  if (!first && !revokeIssuing) return { revoked, added: [] };
  const date = first?.revocationDate ?? new Date(Math.ceil(now.getTime() / 1000) * 1000);
  const added = lineage.filter((s) => !listed.some((e) => e.serialNumber === s));
  for (const s of added) revoked.push({ serialNumber: s, revocationDate: date, reason: first?.reason ?? 'keyCompromise' });
  return { revoked, added };
}
