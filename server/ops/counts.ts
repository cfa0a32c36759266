/**
 * Counting what vault.db holds, from plaintext columns only (no master key needed): accounts,
 * active certificates, conversations, messages, files and audit entries. Tables that a module
 * has not created yet (messaging before its first start) count as empty.
 */
import type { Queryable } from '../vault/index.js';

/** Row counts an administrator watches. */
export interface ApplianceCounts {
  users: number;
  activeCertificates: number;
  conversations: number;
  messages: number;
  files: number;
  auditEntries: number;
}

/** True if `table` exists in the database. */
export async function hasTable(db: Queryable, table: string): Promise<boolean> {
  const row = await db.get<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?", [table]);
  return (row?.n ?? 0) > 0;
}

async function count(db: Queryable, table: string, where = '', params: unknown[] = []): Promise<number> {
  if (!(await hasTable(db, table))) return 0;
  const row = await db.get<{ n: number }>(`SELECT count(*) AS n FROM ${table} ${where}`, params);
  return row?.n ?? 0;
}

/** Counts rows; `now` decides which certificates are still valid. */
export async function countRows(db: Queryable, now: Date): Promise<ApplianceCounts> {
  return {
    users: await count(db, 'accounts'),
    activeCertificates: await count(db, 'certificates', "WHERE status = 'active' AND not_after > ?", [now.toISOString()]),
    conversations: await count(db, 'msg_conversations'),
    messages: await count(db, 'msg_messages'),
    files: await count(db, 'msg_files', "WHERE state = 'final'"),
    auditEntries: await count(db, 'audit_log'),
  };
}
