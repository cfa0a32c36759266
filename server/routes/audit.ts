/**
 * `/v1/audit` (issue 6): the tamper-evident audit trail for auditors, officers and staff.
 *
 *   GET  /checkpoint                       latest signed checkpoint (signs one if the log grew), any role
 *   GET  /checkpoints?after=&limit=        stored checkpoints, oldest first (auditor, officer)
 *   GET  /entries?from=&to=                leaf data of entries from ≤ seq < to, ≤ 1000 (auditor, officer)
 *   GET  /proofs/inclusion?index=&size=    RFC 9162 §2.1.3 proof, any role (hashes only; the entry's
 *                                          leaf data too for the roles that may read entries)
 *   GET  /proofs/consistency?from=&to=     RFC 9162 §2.1.4 proof, any role (content-free)
 *   GET  /events?type=&since=&user=&after=&limit=   filtered view (auditor, officer)
 *   POST /room-access                      record an entry or exit of the appliance's room (officer)
 *
 * Mount with `app.route('/v1/audit', auditRoutes(deps, trail))`; see server/API.md. A damaged
 * stored tree (a missing entry or node) answers 409 AUDIT_TREE_DAMAGED naming it; a stored tree
 * that no longer extends the newest signed checkpoint answers 409 AUDIT_CHECKPOINT_MISMATCH where a
 * new checkpoint would be signed (`/checkpoint`, and proofs without an explicit size).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { Role } from '../accounts/account-store.js';
import {
  AuditTreeDamagedError,
  createAuditTrail,
  recordRoomAccess,
  RoomAccessSchema,
  type AuditTrail,
  type StoredCheckpoint,
} from '../audit/index.js';
import type { AppDeps } from '../app.js';
import type { Appliance } from '../appliance.js';
import { bodyLimit } from '../middleware/body-limit.js';
import { requireRole } from '../middleware/require-role.js';
import { session } from '../middleware/session.js';
import type { AppEnv } from '../middleware/types.js';
import { parseJson, parseParams } from '../middleware/validate.js';

/** The roles that may read entries (`/entries`, `/events`, an inclusion proof's leaf data). */
const ENTRY_READERS: readonly Role[] = ['auditor', 'officer'];

/** Most entries per `GET /entries` page. */
export const ENTRIES_PAGE = 1000;

const int = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const EntriesQuery = z.object({ from: int, to: int.optional() }).refine((q) => q.to === undefined || q.to >= q.from, 'to: must be ≥ from');
const InclusionQuery = z.object({ index: int, size: int.optional() });
const ConsistencyQuery = z.object({ from: int, to: int.optional() });
const CheckpointsQuery = z.object({ after: int.default(0), limit: z.coerce.number().int().min(1).max(1000).default(1000) });
const EventsQuery = z.object({
  type: z
    .string()
    .max(64)
    .regex(/^[a-z][a-z0-9_.-]*$/, 'a lowercase dotted event type or prefix, e.g. login or room.entry')
    .optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  user: z.string().min(1).max(256).optional(),
  after: z.coerce.number().int().min(-1).max(Number.MAX_SAFE_INTEGER).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** The wire form of a checkpoint (server/API.md `checkpoint`). */
export function checkpointView(cp: StoredCheckpoint) {
  return {
    id: cp.id,
    origin: cp.origin,
    size: cp.size,
    root: b64(cp.root),
    time: cp.time.toISOString(),
    note: cp.note,
    signature: b64(cp.signature),
  };
}

/** The audit sub-app over a running {@link AuditTrail}. */
export function auditRoutes(deps: AppDeps, trail: AuditTrail): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { sessions, accounts } = deps.appliance;
  const anyone = session({ sessions, accounts });
  const readers = requireRole(...ENTRY_READERS);
  const { log, checkpointer } = trail;

  app.get('/checkpoint', anyone, async (c) => {
    const cp = await checkpointer.current();
    return c.json({ checkpoint: checkpointView(cp), chain: trail.chainPem });
  });

  app.get('/checkpoints', anyone, readers, async (c) => {
    const q = parseParams(c.req.query(), CheckpointsQuery);
    const list = await checkpointer.list(q.after, q.limit);
    return c.json({ checkpoints: list.map(checkpointView), chain: trail.chainPem });
  });

  app.get('/entries', anyone, readers, async (c) => {
    const q = parseParams(c.req.query(), EntriesQuery);
    const size = await log.size();
    const to = Math.min(q.to ?? size, size, q.from + ENTRIES_PAGE);
    const rows = q.from >= to ? [] : await log.rows(q.from, to);
    return c.json({
      size,
      from: q.from,
      to: Math.max(q.from, to),
      entries: rows.map((r) => ({ seq: r.seq, data: r.data, leafHash: b64(r.leaf_hash) })),
    });
  });

  app.get('/proofs/inclusion', anyone, async (c) => {
    const q = parseParams(c.req.query(), InclusionQuery);
    const size = q.size ?? (await checkpointer.current()).size;
    const proof = await log.inclusionProof(q.index, size);
    const [entry] = await log.rows(q.index, q.index + 1);
    // index < size ≤ the log's size: the row must be there; a deleted one is damage, not "absent".
    if (!entry) throw new AuditTreeDamagedError(`audit entry ${q.index} is missing from the stored log (its audit_log row is gone)`);
    const cp = await checkpointer.atSize(size);
    // The entry itself only to those who may read it through /entries anyway, so the client
    // recomputes the leaf hash instead of trusting ours; other roles get hashes only.
    const mayRead = ENTRY_READERS.includes(c.get('principal').account.role);
    return c.json({
      index: q.index,
      size,
      leafHash: b64(entry.leaf_hash),
      ...(mayRead ? { leafData: entry.data } : {}),
      proof: proof.map(b64),
      checkpoint: cp ? checkpointView(cp) : null,
    });
  });

  app.get('/proofs/consistency', anyone, async (c) => {
    const q = parseParams(c.req.query(), ConsistencyQuery);
    const to = q.to ?? (await checkpointer.current()).size;
    const proof = await log.consistencyProof(q.from, to);
    return c.json({ from: q.from, to, proof: proof.map(b64) });
  });

  app.get('/events', anyone, readers, async (c) => {
    const q = parseParams(c.req.query(), EventsQuery);
    const entries = await log.query({
      ...(q.type !== undefined ? { type: q.type } : {}),
      ...(q.since !== undefined ? { since: new Date(q.since) } : {}),
      ...(q.user !== undefined ? { user: q.user } : {}),
      ...(q.after !== undefined ? { after: q.after } : {}),
      limit: q.limit,
    });
    const events = entries.map((e) => ({
      seq: e.seq,
      at: e.at,
      type: e.type,
      ...(e.actor !== undefined ? { actor: e.actor } : {}),
      ...(e.subject !== undefined ? { subject: e.subject } : {}),
      ...(e.data !== undefined ? { data: e.data } : {}),
    }));
    const last = events[events.length - 1];
    return c.json({ events, next: events.length === q.limit && last ? last.seq : null });
  });

  app.post('/room-access', bodyLimit(deps.config.bodyLimit), anyone, requireRole('officer'), async (c) => {
    const body = await parseJson(c, RoomAccessSchema);
    const rec = await recordRoomAccess(log, c.get('principal').account.login, body, deps.now);
    return c.json(rec, 201);
  });

  return app;
}

/**
 * The audit trail of an opened appliance, with its audit-signing identity; `start()` it after
 * opening and `await stop()` before `appliance.close()`.
 * @example
 * const trail = auditTrailOf(appliance, now, (err) => log.error('audit checkpoint failed', errorFields(err)));
 * trail.start();
 * const app = createApp(deps, { ...routes, '/v1/audit': (d) => auditRoutes(d, trail) });
 */
export function auditTrailOf(appliance: Appliance, now: () => Date, onError?: (err: unknown) => void, checkpointIntervalMs?: number): AuditTrail {
  return createAuditTrail({
    db: appliance.vault.db,
    log: appliance.auditLog,
    auditCert: appliance.auditCert,
    auditKey: appliance.auditKey,
    issuingCert: appliance.issuingCert,
    rootCert: appliance.rootCert,
    org: appliance.meta.org,
    now,
    ...(onError ? { onError } : {}),
    ...(checkpointIntervalMs !== undefined ? { checkpointIntervalMs } : {}),
  });
}
