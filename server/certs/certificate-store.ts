/**
 * Certificates the appliance issued to accounts, their revocation state, and published CRLs.
 *
 * The revoked serials are also kept in memory ({@link RevokedSet}) so the per-request check in the
 * client-certificate middleware costs a set lookup; every revocation updates both.
 */
import type { Queryable } from '../vault/index.js';

/** RFC 5280 §5.3.1 CRLReason names accepted by the API. */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** One issued certificate. `serial` is lower-case hex without leading zeros stripped. */
export interface CertificateRecord {
  serial: string;
  login: string;
  fingerprint: string;
  der: Buffer;
  clearance: string;
  notBefore: Date;
  notAfter: Date;
  issuedAt: Date;
  issuedBy: string;
  status: 'active' | 'revoked';
  revokedAt: Date | null;
  reason: RevocationReason | null;
}

/** One published CRL. */
export interface CrlRecord {
  number: number;
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
}

export const CERTIFICATE_MIGRATIONS = [
  {
    id: 'server/certificates-1',
    sql: `
CREATE TABLE certificates (
  serial TEXT PRIMARY KEY,
  login TEXT NOT NULL REFERENCES accounts(login),
  fingerprint TEXT NOT NULL UNIQUE,
  der BLOB NOT NULL,
  clearance TEXT NOT NULL,
  not_before TEXT NOT NULL,
  not_after TEXT NOT NULL,
  issued_at TEXT NOT NULL,
  issued_by TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active','revoked')),
  revoked_at TEXT,
  reason TEXT
) STRICT;
CREATE INDEX certificates_login ON certificates(login);
CREATE TABLE crls (
  number INTEGER PRIMARY KEY,
  der BLOB NOT NULL,
  this_update TEXT NOT NULL,
  next_update TEXT NOT NULL
) STRICT;
`,
  },
  {
    // SHA-256 of each certificate's SubjectPublicKeyInfo, so issuance can ask who holds a key (a key
    // belongs to one login, and never again once revoked for keyCompromise). Rows from before are
    // filled from their DER at open (key-reuse.ts `fillKeyHashes`): SQL cannot parse a certificate.
    id: 'server/certificates-2',
    sql: `
ALTER TABLE certificates ADD COLUMN spki_sha256 TEXT;
CREATE INDEX certificates_spki ON certificates(spki_sha256);
`,
  },
] as const;

interface CertRow {
  serial: string;
  login: string;
  fingerprint: string;
  der: Buffer;
  clearance: string;
  not_before: string;
  not_after: string;
  issued_at: string;
  issued_by: string;
  status: 'active' | 'revoked';
  revoked_at: string | null;
  reason: RevocationReason | null;
}

function toRecord(r: CertRow): CertificateRecord {
  return {
    serial: r.serial,
    login: r.login,
    fingerprint: r.fingerprint,
    der: r.der,
    clearance: r.clearance,
    notBefore: new Date(r.not_before),
    notAfter: new Date(r.not_after),
    issuedAt: new Date(r.issued_at),
    issuedBy: r.issued_by,
    status: r.status,
    revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
    reason: r.reason,
  };
}

/**
 * Normalises a serial given by a client to pki's form (`Certificate.serialNumber`): lower-case
 * hex, no `0x` or separators, an even number of digits, no leading `00` bytes.
 */
export function normaliseSerial(serial: string): string {
  let s = serial.toLowerCase().replace(/^0x/, '').replace(/[:\s]/g, '');
  if (s.length % 2 === 1) s = `0${s}`;
  while (s.startsWith('00') && s.length > 2) s = s.slice(2);
  return s;
}

/** Reads and writes certificate records and CRLs. */
export class CertificateStore {
  constructor(private readonly db: Queryable) {}

  with(tx: Queryable): CertificateStore {
    return new CertificateStore(tx);
  }

  /** Records a new, active certificate; `spkiSha256` is its key's hash (key-reuse.ts `spkiSha256`). */
  async add(rec: Omit<CertificateRecord, 'status' | 'revokedAt' | 'reason'> & { spkiSha256: string }): Promise<void> {
    await this.db.run(
      `INSERT INTO certificates (serial, login, fingerprint, der, clearance, not_before, not_after, issued_at,
         issued_by, status, spki_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)`,
      [
        normaliseSerial(rec.serial),
        rec.login,
        rec.fingerprint,
        rec.der,
        rec.clearance,
        rec.notBefore.toISOString(),
        rec.notAfter.toISOString(),
        rec.issuedAt.toISOString(),
        rec.issuedBy,
        rec.spkiSha256,
      ],
    );
  }

  /** Every certificate issued for the key whose SubjectPublicKeyInfo hashes to `spkiSha256`. */
  async ofKey(spkiSha256: string): Promise<CertificateRecord[]> {
    const rows = await this.db.all<CertRow>('SELECT * FROM certificates WHERE spki_sha256 = ? ORDER BY issued_at, serial', [
      spkiSha256,
    ]);
    return rows.map(toRecord);
  }

  /** Certificates recorded before their key's hash was (migration `server/certificates-2`). */
  async withoutKeyHash(): Promise<{ serial: string; der: Buffer }[]> {
    return this.db.all<{ serial: string; der: Buffer }>('SELECT serial, der FROM certificates WHERE spki_sha256 IS NULL');
  }

  async setKeyHash(serial: string, spkiSha256: string): Promise<void> {
    await this.db.run('UPDATE certificates SET spki_sha256 = ? WHERE serial = ?', [spkiSha256, normaliseSerial(serial)]);
  }

  async get(serial: string): Promise<CertificateRecord | undefined> {
    const row = await this.db.get<CertRow>('SELECT * FROM certificates WHERE serial = ?', [normaliseSerial(serial)]);
    return row ? toRecord(row) : undefined;
  }

  async byFingerprint(fingerprint: string): Promise<CertificateRecord | undefined> {
    const row = await this.db.get<CertRow>('SELECT * FROM certificates WHERE fingerprint = ?', [fingerprint]);
    return row ? toRecord(row) : undefined;
  }

  async ofLogin(login: string): Promise<CertificateRecord[]> {
    const rows = await this.db.all<CertRow>('SELECT * FROM certificates WHERE login = ? ORDER BY issued_at, serial', [
      login,
    ]);
    return rows.map(toRecord);
  }

  async revoked(): Promise<CertificateRecord[]> {
    const rows = await this.db.all<CertRow>(`SELECT * FROM certificates WHERE status = 'revoked' ORDER BY revoked_at`);
    return rows.map(toRecord);
  }

  /** Serials of every revoked certificate: what the latest CRL must list (no DER read). */
  async revokedSerials(): Promise<string[]> {
    const rows = await this.db.all<{ serial: string }>(`SELECT serial FROM certificates WHERE status = 'revoked'`);
    return rows.map((r) => r.serial);
  }

  /**
   * Marks an active certificate revoked. Compare-and-set: only a row still `active` changes, so of
   * two revocations of one serial at once exactly one wins (the other's reason and time are not
   * written over it).
   * @returns true when this call revoked it; false when it was not active (already revoked, or unknown).
   */
  async revoke(serial: string, at: Date, reason: RevocationReason): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ? WHERE serial = ? AND status = 'active'`,
      [at.toISOString(), reason, normaliseSerial(serial)],
    );
    return r.changes === 1;
  }

  /**
   * Changes a revoked certificate's reason to keyCompromise (RFC 5280 §5.3.1 lets a CA do so once
   * the key is found compromised); its revocation time stays. Compare-and-set like {@link revoke}.
   * @returns true when this call changed it; false when it was not revoked, or was keyCompromise already.
   */
  async markCompromised(serial: string): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE certificates SET reason = 'keyCompromise' WHERE serial = ? AND status = 'revoked' AND (reason IS NULL OR reason <> 'keyCompromise')`,
      [normaliseSerial(serial)],
    );
    return r.changes === 1;
  }

  /**
   * Serials of the active certificates, valid at `at`, that belong to active (not disabled)
   * accounts of `role`: for officers, the certificates someone can still log in with to manage the CA.
   */
  async activeSerialsOfRole(role: string, at: Date): Promise<string[]> {
    const iso = at.toISOString();
    const rows = await this.db.all<{ serial: string }>(
      `SELECT c.serial FROM certificates c JOIN accounts a ON a.login = c.login
        WHERE a.role = ? AND a.status = 'active' AND c.status = 'active' AND c.not_before <= ? AND c.not_after > ?
        ORDER BY c.serial`,
      [role, iso, iso],
    );
    return rows.map((r) => r.serial);
  }

  async latestCrl(): Promise<CrlRecord | undefined> {
    const row = await this.db.get<{ number: number; der: Buffer; this_update: string; next_update: string }>(
      'SELECT * FROM crls ORDER BY number DESC LIMIT 1',
    );
    return row
      ? { number: row.number, der: row.der, thisUpdate: new Date(row.this_update), nextUpdate: new Date(row.next_update) }
      : undefined;
  }

  async addCrl(crl: CrlRecord): Promise<void> {
    await this.db.run('INSERT INTO crls (number, der, this_update, next_update) VALUES (?, ?, ?, ?)', [
      crl.number,
      crl.der,
      crl.thisUpdate.toISOString(),
      crl.nextUpdate.toISOString(),
    ]);
  }
}

/**
 * The in-memory set of revoked serials (and fingerprints) consulted on every request. Loaded
 * from the store at start; updated synchronously by every revocation.
 */
export class RevokedSet {
  private readonly serials = new Set<string>();
  add(serial: string): void {
    this.serials.add(normaliseSerial(serial));
  }
  has(serial: string): boolean {
    return this.serials.has(normaliseSerial(serial));
  }
  get size(): number {
    return this.serials.size;
  }
  static async load(store: CertificateStore): Promise<RevokedSet> {
    const set = new RevokedSet();
    for (const r of await store.revoked()) set.add(r.serial);
    return set;
  }
}
