/**
 * What a restore must not roll back: the security state of the vault it replaces. A backup is a
 * copy of the past, and the live vault knows what happened since: a certificate revoked, an
 * account disabled or its password reset, an envelope superseded, a member removed from a group.
 * Taking the backup's version of those would undo them — a compromised key valid again, with
 * its old sessions; a removed member reading the group's files again. So, in the working copy
 * and before the swap, the live vault's state wins:
 *
 * - accounts in both: the live row (status, clearance, password, lockout, names);
 * - envelopes of accounts the backup has: the live rows (a superseded envelope stays superseded);
 * - certificates revoked live: revoked in the copy too; one issued after the backup comes in
 *   revoked, its account with it as `disabled` when the backup lacks it, so that every CRL the
 *   restored appliance signs still lists it;
 * - CRLs: the live ones numbered above the backup's, so numbers never go back;
 * - login lockouts: the live ones;
 * - members of conversations in both: the live membership decides who stays and in which role
 *   (a member added after the backup is not added back: what happened in the conversation since
 *   is lost with the restore, as its messages are);
 * - the replay guard: the live rows still in force, so a message deleted since the backup is not
 *   accepted again from its signed original (the backup's guard lacks them: a message sent and
 *   deleted after the backup was never in it, so the sweep does not guard it either);
 * - sessions: every one ended (`vault-restored`), whatever either side says: everyone logs in again.
 *
 * Accounts and certificates created after the backup and never revoked are not carried: they
 * return as of the backup (ops/README.md). Nothing here reads a message or a key.
 */
import { existsSync } from 'node:fs';
import type { Db, DbTx } from '../vault/index.js';

/** What {@link carrySecurityState} changed in the working copy. */
export interface Carried {
  /** Accounts whose row differed and was replaced by the live one. */
  accounts: number;
  /** Accounts the backup lacked, brought in disabled for a revoked certificate. */
  accountsAddedDisabled: number;
  envelopes: number;
  /** Certificates revoked live: revoked in the copy, or brought in revoked. */
  revokedCertificates: number;
  crls: number;
  lockouts: number;
  /** Memberships the live vault no longer has, removed. */
  membersRemoved: number;
  /** Memberships whose role changed live. */
  memberRoles: number;
  /** Replay-guard rows (ids of messages deleted since the backup) still in force, kept. */
  replayGuards: number;
  /** Sessions ended: none survives a restore. */
  sessionsEnded: number;
}

const NONE: Carried = {
  accounts: 0,
  accountsAddedDisabled: 0,
  envelopes: 0,
  revokedCertificates: 0,
  crls: 0,
  lockouts: 0,
  membersRemoved: 0,
  memberRoles: 0,
  replayGuards: 0,
  sessionsEnded: 0,
};

/**
 * Carries the live vault's security state (`liveVaultDb`, when it exists and is a vault) into
 * `work`, in one transaction, and ends every session in `work`.
 */
export async function carrySecurityState(work: Db, liveVaultDb: string | undefined, now: () => Date): Promise<Carried> {
  const attach = liveVaultDb !== undefined && existsSync(liveVaultDb);
  // ATTACH cannot run inside a transaction; only SELECTs ever read `live`.
  if (attach) await work.run('ATTACH DATABASE ? AS live', [liveVaultDb]);
  try {
    return await work.transaction(async (tx) => {
      const out = { ...NONE };
      const both = async (table: string): Promise<string[] | undefined> => sharedColumns(tx, table, attach);
      const accountCols = await both('accounts');
      if (accountCols) {
        const set = accountCols.filter((c) => c !== 'login');
        out.accounts = (
          await tx.run(
            `UPDATE main.accounts SET (${set.join(', ')}) = (SELECT ${set.map((c) => `l.${c}`).join(', ')} FROM live.accounts l WHERE l.login = accounts.login)
             WHERE EXISTS (SELECT 1 FROM live.accounts l WHERE l.login = accounts.login AND (${set.map((c) => `l.${c} IS NOT accounts.${c}`).join(' OR ')}))`,
          )
        ).changes;
      }
      const envelopeCols = await both('envelopes');
      if (envelopeCols) {
        out.envelopes = (
          await tx.run(
            `INSERT OR REPLACE INTO main.envelopes (${envelopeCols.join(', ')})
             SELECT ${envelopeCols.map((c) => `l.${c}`).join(', ')} FROM live.envelopes l
             WHERE l.login IN (SELECT login FROM main.accounts)
               AND NOT EXISTS (SELECT 1 FROM main.envelopes e WHERE e.serial = l.serial AND ${envelopeCols.map((c) => `e.${c} IS l.${c}`).join(' AND ')})`,
          )
        ).changes;
      }
      const certCols = await both('certificates');
      if (certCols && accountCols) {
        out.revokedCertificates += (
          await tx.run(
            `UPDATE main.certificates SET status = 'revoked', revoked_at = l.revoked_at, reason = l.reason
             FROM live.certificates l WHERE l.serial = certificates.serial AND l.status = 'revoked' AND certificates.status = 'active'`,
          )
        ).changes;
        const absent = `FROM live.certificates l WHERE l.status = 'revoked' AND l.serial NOT IN (SELECT serial FROM main.certificates)`;
        out.accountsAddedDisabled = (
          await tx.run(
            `INSERT INTO main.accounts (${accountCols.join(', ')})
             SELECT ${accountCols.map((c) => (c === 'status' ? `'disabled'` : `a.${c}`)).join(', ')} FROM live.accounts a
             WHERE a.login IN (SELECT l.login ${absent}) AND a.login NOT IN (SELECT login FROM main.accounts)`,
          )
        ).changes;
        out.revokedCertificates += (
          await tx.run(
            `INSERT INTO main.certificates (${certCols.join(', ')}) SELECT ${certCols.map((c) => `l.${c}`).join(', ')} ${absent}
             AND l.login IN (SELECT login FROM main.accounts)`,
          )
        ).changes;
      }
      const crlCols = await both('crls');
      if (crlCols) {
        out.crls = (
          await tx.run(
            `INSERT INTO main.crls (${crlCols.join(', ')}) SELECT ${crlCols.map((c) => `l.${c}`).join(', ')} FROM live.crls l
             WHERE l.number > (SELECT coalesce(max(number), 0) FROM main.crls)`,
          )
        ).changes;
      }
      const lockoutCols = await both('login_lockouts');
      if (lockoutCols) {
        await tx.run('DELETE FROM main.login_lockouts');
        out.lockouts = (
          await tx.run(`INSERT INTO main.login_lockouts (${lockoutCols.join(', ')}) SELECT ${lockoutCols.join(', ')} FROM live.login_lockouts`)
        ).changes;
      }
      if ((await both('msg_members')) && (await both('msg_conversations'))) {
        out.membersRemoved = (
          await tx.run(
            `DELETE FROM main.msg_members WHERE conversation IN (SELECT id FROM live.msg_conversations)
             AND NOT EXISTS (SELECT 1 FROM live.msg_members l WHERE l.conversation = msg_members.conversation AND l.login = msg_members.login)`,
          )
        ).changes;
        out.memberRoles = (
          await tx.run(
            `UPDATE main.msg_members SET role = l.role FROM live.msg_members l
             WHERE l.conversation = msg_members.conversation AND l.login = msg_members.login AND l.role != msg_members.role`,
          )
        ).changes;
      }
      const guardCols = await both('msg_replay_guard');
      if (guardCols?.includes('id_hash') && guardCols.includes('until')) {
        // A guard row stands for a deletion: the live ones still in force win over the backup's.
        out.replayGuards = (
          await tx.run(
            `INSERT OR REPLACE INTO main.msg_replay_guard (id_hash, until) SELECT l.id_hash, l.until FROM live.msg_replay_guard l
             WHERE l.until >= ? AND NOT EXISTS (SELECT 1 FROM main.msg_replay_guard g WHERE g.id_hash = l.id_hash AND g.until >= l.until)`,
            [now().toISOString()],
          )
        ).changes;
      }
      if (await hasMainTable(tx, 'sessions')) {
        out.sessionsEnded = (
          await tx.run(`UPDATE main.sessions SET ended_at = ?, end_reason = 'vault-restored' WHERE ended_at IS NULL`, [now().toISOString()])
        ).changes;
      }
      return out;
    });
  } finally {
    if (attach) await work.run('DETACH DATABASE live');
  }
}

async function hasMainTable(tx: DbTx, table: string): Promise<boolean> {
  return (await tx.get(`SELECT 1 AS x FROM main.sqlite_master WHERE type = 'table' AND name = ?`, [table])) !== undefined;
}

/**
 * The columns `table` has in both databases (the backup may be of an older schema than the live
 * vault, or the reverse), or undefined when either lacks the table or nothing is attached.
 */
async function sharedColumns(tx: DbTx, table: string, attached: boolean): Promise<string[] | undefined> {
  if (!attached) return undefined;
  const main = await tx.all<{ name: string }>(`SELECT name FROM pragma_table_info(?, 'main')`, [table]);
  const live = new Set((await tx.all<{ name: string }>(`SELECT name FROM pragma_table_info(?, 'live')`, [table])).map((r) => r.name));
  // Names from our own schemas; anything else is left out rather than spliced into SQL.
  const cols = main.map((r) => r.name).filter((n) => live.has(n) && /^[a-z_][a-z0-9_]*$/.test(n));
  return main.length > 0 && live.size > 0 ? cols : undefined;
}
