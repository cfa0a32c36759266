/**
 * Direct conversations and the caller's conversation list (issue 4, "Conversations and
 * clearance"). A direct conversation's label is the lower of the two people's certificate
 * clearances: neither may receive a message above their own clearance, and every message in it
 * is meant for both.
 */
import {
  minClearance,
  newId,
  principalClearance,
  rank,
  requireMember,
  type Ctx,
} from './context.js';
import { ConversationNotFoundError, ForbiddenError, PeerNotFoundError } from './errors.js';
import type { Principal } from './ports.js';

/** A conversation as the API shows it (API.md `conversation`). */
export interface ConversationView {
  id: string;
  kind: 'direct' | 'group';
  name?: string;
  peer?: string;
  label: string;
  members?: { login: string; role: 'owner' | 'member' }[];
  retentionDays?: number;
  unread: number;
  lastSeq: number;
  muted: boolean;
}

/**
 * The direct conversation between the caller and `peer`, created on first use (idempotent: one
 * per pair). The conversation key is created before its rows (keys before rows).
 *
 * @throws PeerNotFoundError if `peer` is not an active account with a certificate, or is the caller.
 */
export async function ensureDirect(ctx: Ctx, p: Principal, peer: string): Promise<ConversationView> {
  if (peer === p.login) throw new PeerNotFoundError('a direct conversation needs another person');
  const pair = [p.login, peer].sort().join(' ');
  const existing = await ctx.db.get<{ id: string }>('SELECT id FROM msg_conversations WHERE pair = ?', [pair]);
  if (existing) return conversationView(ctx, p, existing.id);
  const other = await ctx.directory.person(peer);
  if (!other || !other.active) throw new PeerNotFoundError(`no active account ${peer}`);
  if (!other.certificateClearance) throw new PeerNotFoundError(`${peer} has no valid certificate yet`);
  if (p.role === 'auditor' || other.role === 'auditor') {
    throw new ForbiddenError('auditors verify correspondence; they do not take part in it');
  }
  const label = minClearance(principalClearance(p), other.certificateClearance);
  const id = newId(ctx.random);
  await ctx.keys.createConversationKey(id);
  const at = ctx.now().toISOString();
  try {
    await ctx.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO msg_conversations (id, kind, pair, label, created_by, created_at) VALUES (?, 'direct', ?, ?, ?, ?)`,
        [id, pair, label, p.login, at],
      );
      for (const login of [p.login, peer]) {
        await tx.run(`INSERT INTO msg_members (conversation, login, role, joined_at) VALUES (?, ?, 'member', ?)`, [id, login, at]);
      }
    });
  } catch (err) {
    // Lost a race with the same pair: keep theirs, destroy our unused key.
    await ctx.keys.destroyConversation(id).catch(() => undefined);
    const again = await ctx.db.get<{ id: string }>('SELECT id FROM msg_conversations WHERE pair = ?', [pair]);
    if (!again) throw err;
    return conversationView(ctx, p, again.id);
  }
  return conversationView(ctx, p, id);
}

interface ListRow {
  id: string;
  kind: 'direct' | 'group';
  name: string | null;
  pair: string | null;
  label: string;
  retention_days: number | null;
  muted: number;
  read_seq: number;
  last_seq: number | null;
  unread: number;
}

export const LIST_SQL = `
SELECT c.id, c.kind, c.name, c.pair, c.label, c.retention_days, mm.muted, mm.read_seq,
  -- Newest first down the (conversation, seq) index, stopping at the first row the caller is cleared
  -- for: MAX(seq) with the label filter visited every row of the conversation.
  (SELECT m.seq FROM msg_messages m WHERE m.conversation = c.id AND m.label_rank <= $rank ORDER BY m.seq DESC LIMIT 1) AS last_seq,
  (SELECT COUNT(*) FROM msg_messages m WHERE m.conversation = c.id AND m.seq > mm.read_seq
     AND m.label_rank <= $rank AND m.sender <> $login) AS unread
FROM msg_members mm JOIN msg_conversations c ON c.id = mm.conversation
WHERE mm.login = $login`;

function toView(r: ListRow, login: string): ConversationView {
  const peer = r.pair?.split(' ').find((l) => l !== login);
  return {
    id: r.id,
    kind: r.kind,
    ...(r.name !== null ? { name: r.name } : {}),
    ...(r.kind === 'direct' && peer !== undefined ? { peer } : {}),
    label: r.label,
    ...(r.retention_days !== null ? { retentionDays: r.retention_days } : {}),
    unread: r.unread,
    lastSeq: r.last_seq ?? 0,
    muted: r.muted === 1,
  };
}

/** The caller's conversations with unread counts (messages above their clearance are not counted). */
export async function listConversations(ctx: Ctx, p: Principal): Promise<ConversationView[]> {
  const rows = await ctx.db.all<ListRow>(`${LIST_SQL} ORDER BY last_seq DESC, c.id`, {
    $rank: rank(principalClearance(p)),
    $login: p.login,
  });
  return rows.map((r) => toView(r, p.login));
}

/** One of the caller's conversations. @throws ConversationNotFoundError | NotAMemberError */
export async function conversationView(ctx: Ctx, p: Principal, id: string): Promise<ConversationView> {
  const conv = await requireMember(ctx, p, id);
  const row = await ctx.db.get<ListRow>(`${LIST_SQL} AND c.id = $id`, {
    $rank: rank(principalClearance(p)),
    $login: p.login,
    $id: id,
  });
  if (!row) throw new ConversationNotFoundError(`conversation ${id} does not exist or is not yours`);
  const view = toView(row, p.login);
  if (conv.kind === 'group') view.members = [...conv.members].map(([login, role]) => ({ login, role }));
  return view;
}

/** Mutes or unmutes a conversation for the caller (urgent messages still arrive live). */
export async function setMuted(ctx: Ctx, p: Principal, id: string, muted: boolean): Promise<ConversationView> {
  await requireMember(ctx, p, id);
  await ctx.db.run('UPDATE msg_members SET muted = ? WHERE conversation = ? AND login = ?', [muted ? 1 : 0, id, p.login]);
  return conversationView(ctx, p, id);
}

