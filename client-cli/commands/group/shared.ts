/** What the `sigil group …` verbs share: the human view of a group. */
import type { Group } from '../../messaging/api.js';
import type { Runtime } from '../../runtime.js';

export function printGroup(rt: Runtime, g: Group): void {
  rt.out.fields([
    ['group', `#${g.name}`],
    ['label', g.label.replace('-', ' ').toUpperCase()],
    ['id', g.id],
    ['created by', g.createdBy],
    ['created', g.createdAt],
    ['retention', g.retentionDays ? `${g.retentionDays} days` : 'none'],
    ['members', g.members.map((m) => (m.role === 'owner' ? `${m.login} (owner)` : m.login)).join(', ')],
  ]);
}

/** `ops` and `#ops` both name the group ops. */
export function groupName(text: string): string {
  return text.startsWith('#') ? text.slice(1) : text;
}

export function groupPath(name: string): string {
  return `/v1/groups/${encodeURIComponent(groupName(name))}`;
}
