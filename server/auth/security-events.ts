/**
 * Security events of accounts, login and certificates, and the sink they are written to.
 *
 * Events carry identifiers only (logins, serials, reasons), never passwords, tokens, keys or
 * message content. They go to the audit module's append-only, tamper-evident log.
 */
import type { AuditLog } from '../audit/index.js';

/** Kinds of security events (issue 3). */
export type SecurityEventType =
  | 'appliance.initialised'
  | 'login.ok'
  | 'login.failed'
  | 'login.locked'
  /** A login attempt refused before its password was checked (locked, bad nonce): auth/refusals.ts. */
  | 'login.refused'
  /** A bearer token refused (stolen, ended, unknown): auth/refusals.ts. */
  | 'session.refused'
  /** A request over a revoked, expired or not yet valid certificate: auth/refusals.ts. */
  | 'certificate.refused'
  /** Too many failed logins over one certificate: every login over it is refused for a while (auth/lockout.ts). */
  | 'certificate.locked'
  | 'logout'
  | 'password.changed'
  | 'envelope.issued'
  | 'envelope.used'
  | 'account.created'
  | 'account.disabled'
  | 'account.enabled'
  | 'account.unlocked'
  | 'account.reset'
  | 'account.clearance-changed'
  | 'account.renamed'
  | 'account.deleted'
  | 'certificate.issued'
  | 'certificate.revoked'
  | 'crl.published'
  | 'tls.renewed'
  /** The audit-signing certificate renewed at open (certs/audit-cert-renewal.ts). */
  | 'audit.cert.renewed';

/** One event. `actor` is who did it (a login, or `system`); `subject` whom it concerns. */
export interface SecurityEvent {
  type: SecurityEventType;
  at: Date;
  actor: string;
  subject?: string;
  /** Scalars only: serials, reasons, roles, clearances, peer addresses. */
  detail?: Record<string, string | number | boolean | null>;
}

/** The event `type` by `actor` about `subject` at `at`, with `detail` when there is one. */
export function securityEvent(at: Date, type: SecurityEventType, actor: string, subject: string, detail?: SecurityEvent['detail']): SecurityEvent {
  return { type, at, actor, subject, ...(detail ? { detail } : {}) };
}

/** Where events go. Appends are atomic per call. */
export interface AuditSink {
  append(events: readonly SecurityEvent[]): Promise<void>;
}

/** A stored event, as read back. */
export interface StoredSecurityEvent extends SecurityEvent {
  seq: number;
}

/**
 * The sink over the audit module's append-only, Merkle-hashed log (`server/audit`). Appends made
 * inside a database transaction commit or roll back with it.
 */
export class AuditLogSink implements AuditSink {
  constructor(readonly log: AuditLog) {}

  async append(events: readonly SecurityEvent[]): Promise<void> {
    await this.log.append(
      events.map((e) => ({
        type: e.type,
        actor: e.actor,
        at: e.at,
        ...(e.subject !== undefined ? { subject: e.subject } : {}),
        ...(e.detail !== undefined ? { data: e.detail } : {}),
      })),
    );
  }

  /** Security events in order, optionally of one type (reads the whole log: for tests and tools). */
  async list(type?: SecurityEventType): Promise<StoredSecurityEvent[]> {
    const size = await this.log.size();
    const out: StoredSecurityEvent[] = [];
    for (let from = 0; from < size; from += 10_000) {
      for (const e of await this.log.entries(from, Math.min(size, from + 10_000))) {
        if (type !== undefined && e.type !== type) continue;
        out.push({
          seq: e.seq,
          type: e.type as SecurityEventType,
          at: new Date(e.at),
          actor: e.actor ?? 'system',
          ...(e.subject !== undefined ? { subject: e.subject } : {}),
          ...(e.data !== undefined ? { detail: e.data as SecurityEvent['detail'] } : {}),
        });
      }
    }
    return out;
  }
}
