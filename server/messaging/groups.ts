/**
 * Groups (issue 4): a name, a security label (the highest classification the group may carry),
 * owners and members. Owners and officers add and remove members; every member's certificate
 * clearance must be at least the group's label, so every member may read every message in it.
 */
import type { Clearance } from '../../pki/index.js';
import { isOfficer, newId, principalClearance, rank, type Ctx } from './context.js';
import {
  ClearanceTooLowError,
  ForbiddenError,
  GroupExistsError,
  GroupNotFoundError,
  MembershipError,
  PeerNotFoundError,
} from './errors.js';
import type { DbTx } from '../vault/index.js';
import type { Principal } from './ports.js';

/**
 * Who may read a group is governed by its members: every creation and every change of membership
 * is an audit entry, committed with the change (joined to its transaction), so an officer or owner
 * who adds someone to read a group's history, then removes them, leaves the trace of both.
 */
async function auditGroup(
  ctx: Ctx,
  type: 'group.created' | 'group.member.added' | 'group.member.removed',
  p: Principal,
  subject: string,
  data: Record<string, string>,
): Promise<void> {
  if (ctx.audit) await ctx.audit.append([{ type, actor: p.login, subject, at: ctx.now(), data }], { join: true });
}

/** A group as the API shows it (API.md `group`). */
export interface GroupView {
  id: string;
  name: string;
  label: string;
  retentionDays?: number;
  createdBy: string;
  createdAt: string;
  members: { login: string; role: 'owner' | 'member' }[];
}

interface GroupRow {
  id: string;
  name: string;
  label: Clearance;
  retention_days: number | null;
  created_by: string;
  created_at: string;
}

const GROUP_COLS = 'id, name, label, retention_days, created_by, created_at';

/**
 * Creates a group; the creator becomes its owner. Needs clearance ≥ label.
 *
 * @throws ClearanceTooLowError | GroupExistsError | ForbiddenError (auditors)
 */
export async function createGroup(
  ctx: Ctx,
  p: Principal,
  input: { name: string; label: Clearance; retentionDays?: number | undefined },
): Promise<GroupView> {
  if (p.role === 'auditor') throw new ForbiddenError('auditors verify correspondence; they do not take part in it');
  const holder = principalClearance(p);
  if (rank(holder) < rank(input.label)) {
    throw new ClearanceTooLowError(`group label ${input.label} is above your certificate's clearance ${holder}`);
  }
  if (await ctx.db.get('SELECT 1 AS x FROM msg_conversations WHERE name = ?', [input.name])) {
    throw new GroupExistsError(`a group named ${input.name} already exists`);
  }
  const id = newId(ctx.random);
  await ctx.keys.createConversationKey(id);
  const at = ctx.now().toISOString();
  try {
    await ctx.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO msg_conversations (id, kind, name, label, retention_days, created_by, created_at)
         VALUES (?, 'group', ?, ?, ?, ?, ?)`,
        [id, input.name, input.label, input.retentionDays ?? null, p.login, at],
      );
      await tx.run(`INSERT INTO msg_members (conversation, login, role, joined_at) VALUES (?, ?, 'owner', ?)`, [id, p.login, at]);
      await auditGroup(ctx, 'group.created', p, p.login, { group: id, name: input.name, label: input.label });
    });
  } catch (err) {
    await ctx.keys.destroyConversation(id).catch(() => undefined);
    if (await ctx.db.get('SELECT 1 AS x FROM msg_conversations WHERE name = ?', [input.name])) {
      throw new GroupExistsError(`a group named ${input.name} already exists`, { cause: err });
    }
    throw err;
  }
  return groupView(ctx, await groupRow(ctx, input.name));
}

async function groupRow(ctx: Ctx, name: string): Promise<GroupRow> {
  const row = await ctx.db.get<GroupRow>(`SELECT ${GROUP_COLS} FROM msg_conversations WHERE kind = 'group' AND name = ?`, [name]);
  if (!row) throw new GroupNotFoundError(`no group named ${name}`);
  return row;
}

async function groupView(ctx: Ctx, row: GroupRow): Promise<GroupView> {
  const conv = await ctx.members.get(row.id);
  const members = [...(conv?.members ?? [])].map(([login, role]) => ({ login, role })).sort((a, b) => a.login.localeCompare(b.login));
  return {
    id: row.id,
    name: row.name,
    label: row.label,
    ...(row.retention_days !== null ? { retentionDays: row.retention_days } : {}),
    createdBy: row.created_by,
    createdAt: row.created_at,
    members,
  };
}

/** The caller's groups; officers see all. */
export async function listGroups(ctx: Ctx, p: Principal): Promise<GroupView[]> {
  const rows = isOfficer(p)
    ? await ctx.db.all<GroupRow>(`SELECT ${GROUP_COLS} FROM msg_conversations WHERE kind = 'group' ORDER BY name`)
    : await ctx.db.all<GroupRow>(
        `SELECT ${GROUP_COLS.split(', ').map((c) => `c.${c}`).join(', ')} FROM msg_conversations c
         JOIN msg_members m ON m.conversation = c.id AND m.login = ? WHERE c.kind = 'group' ORDER BY c.name`,
        [p.login],
      );
  return Promise.all(rows.map((r) => groupView(ctx, r)));
}

/**
 * A group the caller belongs to (or any group, for officers).
 *
 * @throws GroupNotFoundError — also for groups the caller is not in (their existence is private).
 */
export async function getGroup(ctx: Ctx, p: Principal, name: string): Promise<GroupView> {
  const row = await groupRow(ctx, name);
  const view = await groupView(ctx, row);
  if (!isOfficer(p) && !view.members.some((m) => m.login === p.login)) throw new GroupNotFoundError(`no group named ${name}`);
  return view;
}

/** The group's id and the caller's right to manage it (owner or officer). */
export async function requireManager(ctx: Ctx, p: Principal, name: string): Promise<GroupView> {
  const view = await getGroup(ctx, p, name);
  const mine = view.members.find((m) => m.login === p.login);
  if (!isOfficer(p) && mine?.role !== 'owner') {
    throw new ForbiddenError(`only owners of ${name} and officers may do this`);
  }
  return view;
}

/**
 * Adds a member (or changes their role). Their certificate clearance must be ≥ the label.
 *
 * @throws ForbiddenError | PeerNotFoundError | ClearanceTooLowError
 */
export async function addMember(
  ctx: Ctx,
  p: Principal,
  name: string,
  input: { login: string; role?: 'owner' | 'member' | undefined },
): Promise<GroupView> {
  const group = await requireManager(ctx, p, name);
  // An officer manages every group, but joins one only as anyone does: added by an owner. Else an
  // officer could add themselves, read the whole history with its bodies, and leave again.
  if (input.login === p.login && group.members.find((m) => m.login === p.login)?.role !== 'owner') {
    throw new ForbiddenError(`officers manage ${name} but do not add themselves to it; one of its owners adds you`);
  }
  const person = await ctx.directory.person(input.login);
  if (!person || !person.active) throw new PeerNotFoundError(`no active account ${input.login}`);
  if (person.role === 'auditor') throw new ForbiddenError('auditors verify correspondence; they do not take part in it');
  const cl = person.certificateClearance;
  if (!cl || rank(cl) < rank(group.label as Clearance)) {
    // Not the clearance itself: it is need-to-know (API.md, Directory), and an owner is not an officer.
    throw new ClearanceTooLowError(`${input.login}'s certificate clearance is below group ${name}'s label ${group.label}`);
  }
  const role = input.role ?? 'member';
  const owners = group.members.filter((m) => m.role === 'owner');
  if (role === 'member' && owners.length === 1 && owners[0]!.login === input.login) {
    throw new MembershipError(`${input.login} is the last owner of ${name}; add another owner first`);
  }
  // Only while the group exists: a destroy that committed since it was looked up leaves nothing
  // to join (the foreign key would refuse the row, as an internal error).
  const added = await ctx.db.transaction(async (tx: DbTx) => {
    const r = await tx.run(
      `INSERT INTO msg_members (conversation, login, role, joined_at)
       SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM msg_conversations WHERE id = ?)
       ON CONFLICT (conversation, login) DO UPDATE SET role = excluded.role`,
      [group.id, input.login, role, ctx.now().toISOString(), group.id],
    );
    if (r.changes > 0 && role === 'member') await keepAnOwner(tx, group.id, name, input.login);
    if (r.changes > 0) await auditGroup(ctx, 'group.member.added', p, input.login, { group: group.id, name, role });
    return r;
  });
  ctx.members.invalidate(group.id);
  if (added.changes === 0) throw new GroupNotFoundError(`no group named ${name}`);
  return groupView(ctx, await groupRow(ctx, name));
}

/**
 * Removes a member. Owners and officers may remove anyone; a member may remove themselves.
 * The last owner cannot be removed (destroy the group instead).
 *
 * @throws ForbiddenError | MembershipError
 */
export async function removeMember(ctx: Ctx, p: Principal, name: string, login: string): Promise<GroupView> {
  const group = login === p.login ? await getGroup(ctx, p, name) : await requireManager(ctx, p, name);
  const target = group.members.find((m) => m.login === login);
  if (!target) throw new MembershipError(`${login} is not a member of ${name}`);
  if (target.role === 'owner' && group.members.filter((m) => m.role === 'owner').length === 1) {
    throw new MembershipError(`${login} is the last owner of ${name}; add another owner or destroy the group`);
  }
  await ctx.db.transaction(async (tx: DbTx) => {
    const r = await tx.run('DELETE FROM msg_members WHERE conversation = ? AND login = ?', [group.id, login]);
    if (r.changes > 0) await keepAnOwner(tx, group.id, name, login);
    if (r.changes > 0) await auditGroup(ctx, 'group.member.removed', p, login, { group: group.id, name });
  });
  ctx.members.invalidate(group.id);
  return groupView(ctx, await groupRow(ctx, name));
}

/**
 * Inside the change's transaction, after it: the group still has an owner besides `login` (who was
 * just removed or made a plain member), or the change is rolled back. The checks above it read the
 * members before the transaction, so two owners removing or demoting each other at the same moment
 * each saw the other still an owner, and the group was left with none: no one but an officer could
 * manage or destroy it any more.
 *
 * @throws MembershipError
 */
async function keepAnOwner(tx: DbTx, groupId: string, name: string, login: string): Promise<void> {
  const other = await tx.get<{ x: number }>(
    `SELECT 1 AS x FROM msg_members WHERE conversation = ? AND role = 'owner' AND login <> ? LIMIT 1`,
    [groupId, login],
  );
  if (!other) throw new MembershipError(`${login} is the last owner of ${name}; add another owner or destroy the group`);
}
