/**
 * The retention sweep (issue 4, "Irreversible deletion"): each group's messages older than its
 * `retentionDays` destroyed as any deletion is (deletion-order.ts), with a tombstone by
 * `system:retention`; and expired replay guards removed.
 */
import type { Ctx } from './context.js';
import { appendTombstone, draftTombstone } from './deletion-record.js';
import { announce, rowsThenKeys } from './deletion-order.js';
import { deleteMessageRows, REF_COLS, type MessageRef } from './deletion-rows.js';
import { errorFields } from '../log.js';

/**
 * Per-group retention: messages older than the group's `retentionDays` are destroyed the same
 * way (rows with their tombstone by `system:retention`, keys, checkpoint). Also expires old replay
 * guards. Answers how many messages went.
 *
 * Each group on its own: a group whose destroy fails (its transaction rolled back, nothing of it
 * written) is logged and tried again at the next sweep, and the groups after it are still swept —
 * one failure must not keep every other group's messages past their retention.
 */
export async function sweepRetention(ctx: Ctx): Promise<number> {
  const now = ctx.now();
  await ctx.room.freeing(() => ctx.db.run('DELETE FROM msg_replay_guard WHERE until < ?', [now.toISOString()]));
  const groups = await ctx.db.all<{ id: string; retention_days: number }>(
    `SELECT id, retention_days FROM msg_conversations WHERE kind = 'group' AND retention_days IS NOT NULL`,
  );
  let total = 0;
  for (const g of groups) {
    try {
      total += await sweepGroup(ctx, g, now);
    } catch (err) {
      ctx.log('messaging.retention-failed', errorFields(err));
    }
  }
  return total;
}

/** Destroys one group's messages older than its retention; answers how many went. */
async function sweepGroup(ctx: Ctx, g: { id: string; retention_days: number }, now: Date): Promise<number> {
  const cutoff = new Date(now.getTime() - g.retention_days * 86_400_000).toISOString();
  const old = await ctx.db.all<MessageRef>(`SELECT ${REF_COLS} FROM msg_messages WHERE conversation = ? AND received_at < ?`, [
    g.id,
    cutoff,
  ]);
  if (old.length === 0) return 0;
  const ids = old.map((o) => o.id);
  const draft = await draftTombstone(ctx, {
    target: `conversation:${g.id}`,
    deletedBy: 'system:retention',
    reason: `retention of ${g.retention_days} days`,
  });
  await rowsThenKeys(
    ctx,
    async (tx, keysGo) => {
      keysGo({ messageIds: await deleteMessageRows(ctx, tx, old) });
      return appendTombstone(ctx, draft, ids.length);
    },
    () => ctx.hub.withdraw({ conversation: g.id, ids }),
  );
  await announce(ctx, async () => {
    const conv = await ctx.members.get(g.id);
    if (conv) ctx.hub.notifyDeleted(conv.members.keys(), { conversation: g.id, ids });
  });
  return ids.length;
}
