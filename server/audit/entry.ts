/**
 * What an audit entry is: the event a caller appends and its schema, the canonical JSON leaf data
 * that is stored and hashed, and the stored row with its parsing back into an entry. The log
 * (`log.ts`) writes these; verification (`verify.ts`, `verify-stored.ts`) reads them.
 */
import { z } from 'zod';
import { CanonicalJsonError, canonicalJson } from '../../pki/index.js';
import { AuditEventInvalidError } from './errors.js';
import type { Hash } from './merkle.js';

/** An event to append. `type` is free-form (`login.ok`, `message.accepted`, …): the set is open. */
export interface AuditEvent {
  type: string;
  /** Who did it (a login, `system`). */
  actor?: string;
  /** What it was done to (`user:alice`, `conversation:…`, a certificate serial). */
  subject?: string;
  /** Metadata, JSON-serialisable; never message content. */
  data?: Record<string, unknown>;
  /** When; default the log's clock. */
  at?: Date;
}

export const EventSchema = z.object({
  type: z.string().min(1).max(64).regex(/^[a-z][a-z0-9_.-]*$/, 'lowercase dotted name, e.g. login.ok'),
  actor: z.string().min(1).max(256).optional(),
  subject: z.string().min(1).max(512).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
  at: z.date().refine((d) => !Number.isNaN(d.getTime()), 'valid date').optional(),
});

/** A stored entry. */
export interface AuditEntry {
  seq: number;
  at: string;
  type: string;
  actor?: string;
  subject?: string;
  data?: Record<string, unknown>;
  /** The canonical JSON leaf data exactly as stored and hashed. */
  leafData: string;
  leafHash: Hash;
}

/** A stored row as read raw, the input of `verifyLog`. */
export interface AuditRow {
  seq: number;
  data: string;
  leaf_hash: Uint8Array;
}

/** Builds the leaf data of an entry: RFC 8785 canonical JSON with `v: 1`. */
export function entryLeafData(seq: number, at: string, ev: Omit<AuditEvent, 'at'>): string {
  // Keys inserted in their canonical (sorted) order, so canonicalJson takes its fast path whenever
  // `data` lists its keys sorted too (messaging's entries do).
  const obj: Record<string, unknown> = {};
  if (ev.actor !== undefined) obj.actor = ev.actor;
  obj.at = at;
  if (ev.data !== undefined) obj.data = ev.data;
  obj.seq = seq;
  if (ev.subject !== undefined) obj.subject = ev.subject;
  obj.type = ev.type;
  obj.v = 1;
  try {
    return canonicalJson(obj);
  } catch (e) {
    if (e instanceof CanonicalJsonError) throw new AuditEventInvalidError(`entry cannot be serialised as canonical JSON: ${e.message}`, { cause: e });
    throw e;
  }
}

/** Parses a stored row back into an entry (the row's data is the canonical JSON leaf data). */
export function rowToEntry(r: AuditRow): AuditEntry {
  const obj = JSON.parse(r.data) as { at: string; type: string; actor?: string; subject?: string; data?: Record<string, unknown> };
  const e: AuditEntry = { seq: r.seq, at: obj.at, type: obj.type, leafData: r.data, leafHash: new Uint8Array(r.leaf_hash) };
  if (obj.actor !== undefined) e.actor = obj.actor;
  if (obj.subject !== undefined) e.subject = obj.subject;
  if (obj.data !== undefined) e.data = obj.data;
  return e;
}
