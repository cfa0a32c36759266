/**
 * Security events of accounts, login and certificates, and the sink they are written to.
 *
 * Events carry identifiers only (logins, serials, reasons), never passwords, tokens, keys or
 * message content. The default sink is an append-only table (triggers refuse UPDATE and DELETE);
 * the audit module's tamper-evident log can replace it through the same {@link AuditSink} shape.
 */
import type { Queryable } from '../vault/index.js';

/** Kinds of security events (issue 3). */
export type SecurityEventType =
  | 'appliance.initialised'
  | 'login.ok'
  | 'login.failed'
  | 'login.locked'
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
  | 'certificate.issued'
  | 'certificate.revoked'
  | 'crl.published';

/** One event. `actor` is who did it (a login, or `system`); `subject` whom it concerns. */
export interface SecurityEvent {
  type: SecurityEventType;
  at: Date;
  actor: string;
  subject?: string;
  /** Scalars only: serials, reasons, roles, clearances, peer addresses. */
  detail?: Record<string, string | number | boolean | null>;
}

/** Where events go. Appends are atomic per call. */
export interface AuditSink {
  append(events: readonly SecurityEvent[]): Promise<void>;
}

export const SECURITY_EVENT_MIGRATIONS = [
  {
    id: 'server/security-events-1',
    sql: `
CREATE TABLE security_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  subject TEXT,
  detail TEXT NOT NULL
) STRICT;
CREATE TRIGGER security_events_no_update BEFORE UPDATE ON security_events
  BEGIN SELECT RAISE(ABORT, 'security_events is append-only'); END;
CREATE TRIGGER security_events_no_delete BEFORE DELETE ON security_events
  BEGIN SELECT RAISE(ABORT, 'security_events is append-only'); END;
`,
  },
] as const;

/** A stored event, as read back. */
export interface StoredSecurityEvent extends SecurityEvent {
  seq: number;
}

/** The append-only table sink. */
export class TableAuditSink implements AuditSink {
  constructor(private readonly db: Queryable) {}

  async append(events: readonly SecurityEvent[]): Promise<void> {
    for (const e of events) {
      await this.db.run('INSERT INTO security_events (type, at, actor, subject, detail) VALUES (?, ?, ?, ?, ?)', [
        e.type,
        e.at.toISOString(),
        e.actor,
        e.subject ?? null,
        JSON.stringify(e.detail ?? {}),
      ]);
    }
  }

  /** Events in order, optionally only of one type. */
  async list(type?: SecurityEventType): Promise<StoredSecurityEvent[]> {
    const rows = await this.db.all<{ seq: number; type: SecurityEventType; at: string; actor: string; subject: string | null; detail: string }>(
      type ? 'SELECT * FROM security_events WHERE type = ? ORDER BY seq' : 'SELECT * FROM security_events ORDER BY seq',
      type ? [type] : [],
    );
    return rows.map((r) => ({
      seq: r.seq,
      type: r.type,
      at: new Date(r.at),
      actor: r.actor,
      subject: r.subject ?? undefined,
      detail: JSON.parse(r.detail) as SecurityEvent['detail'],
    }));
  }
}
