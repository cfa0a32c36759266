/**
 * A deletion's record (issue 4, "Irreversible deletion"): the deleter's signed `sigil-delete`
 * statement checked, and the tombstone it goes into — drafted before the rows' transaction (its
 * keyed hash is crypto, kept out of the vault's lock) and appended to the audit trail inside it.
 */
import { fromB64, newId, type Ctx } from './context.js';
import { ClockSkewError, DeleteStatementInvalidError } from './errors.js';
import { parseDeleteStatement } from './header.js';
import type { Principal } from './ports.js';

/** What a deleter posts. */
export interface DeleteRequest {
  reason: string;
  /** The `sigil-delete` canonical JSON exactly as signed. */
  statement: string;
  /** Detached CMS over the statement, base64. */
  signature: string;
}

/** The content-free record of a deletion (API.md `tombstone`). */
export interface Tombstone {
  id: string;
  /** HMAC of the target (`message:<id>` …) under the appliance's audit key. */
  target: string;
  deletedBy: string;
  at: string;
  reason: string;
  count: number;
  audit?: { index: number };
}

const encoder = new TextEncoder();

/** What of a checked statement goes into the tombstone: the signature and the statement's own time. */
export interface CheckedStatement {
  signature: string;
  /** The statement's `at` exactly as signed (not the tombstone's time). */
  at: string;
}

/** Checks the deleter's signed statement. @throws DeleteStatementInvalidError | ClockSkewError */
export async function checkStatement(ctx: Ctx, p: Principal, req: DeleteRequest, target: string): Promise<CheckedStatement> {
  const st = parseDeleteStatement(req.statement, { target, reason: req.reason });
  const now = ctx.now();
  const skew = Math.abs(Date.parse(st.at) - now.getTime());
  if (skew > ctx.config.clockSkewMs) {
    throw new ClockSkewError(`statement time ${st.at} is ${Math.round(skew / 1000)} s from server time ${now.toISOString()}`);
  }
  const sig = fromB64(req.signature, 'signature', (m) => new DeleteStatementInvalidError(m));
  const check = await ctx.verify(sig, encoder.encode(req.statement), p.certificate);
  if (!check.ok) throw new DeleteStatementInvalidError(`statement signature does not verify: ${check.reason}: ${check.detail}`);
  return { signature: req.signature, at: st.at };
}

/** A tombstone as known before its rows' transaction: the keyed hash is crypto, kept out of the vault's lock. */
export interface TombstoneDraft {
  id: string;
  /** Keyed hash of the target. */
  target: string;
  deletedBy: string;
  reason: string;
  /** The deleter's signed statement (absent for system deletions such as retention). */
  statement: CheckedStatement | undefined;
}

export async function draftTombstone(
  ctx: Ctx,
  t: { target: string; deletedBy: string; reason: string; statement?: CheckedStatement },
): Promise<TombstoneDraft> {
  return { id: newId(ctx.random), target: await ctx.keyedHash(t.target), deletedBy: t.deletedBy, reason: t.reason, statement: t.statement };
}

/**
 * Appends the tombstone to the audit trail from inside the rows' vault transaction, joined (no
 * savepoint): the rows and their tombstone commit together or not at all, so no deletion is ever
 * without its record, and a failed append rolls the rows (and with them the keys' deletes) back.
 */
export async function appendTombstone(ctx: Ctx, d: TombstoneDraft, count: number): Promise<Tombstone> {
  const at = ctx.now();
  const ts: Tombstone = { id: d.id, target: d.target, deletedBy: d.deletedBy, at: at.toISOString(), reason: d.reason, count };
  if (ctx.audit) {
    const [entry] =
      (await ctx.audit.append(
        [
          {
            type: 'deletion',
            actor: d.deletedBy,
            subject: d.target,
            at,
            // With statementAt, an auditor who knows the target (`message:<id>` from an export, …)
            // rebuilds the signed statement byte for byte — RFC 8785 canonical JSON of
            // {at: statementAt, purpose: 'sigil-delete', reason, target} — and checks
            // statementSignature with the deleter's certificate (server/audit/README.md). The
            // target itself stays out: the subject is its keyed hash (entries name no message id).
            data: {
              tombstone: d.id,
              reason: d.reason,
              count,
              ...(d.statement !== undefined ? { statementSignature: d.statement.signature, statementAt: d.statement.at } : {}),
            },
          },
        ],
        { join: true },
      )) ?? [];
    if (entry) ts.audit = { index: Number(entry.seq) };
  }
  return ts;
}
