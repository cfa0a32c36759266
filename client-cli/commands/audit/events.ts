/** `sigil audit events`: the filtered view of the audit log (auditor, officer). */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { wholeNumber } from '../../flag-numbers.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface AuditEventsOptions {
  type?: string;
  since?: string;
  user?: string;
  limit?: number;
  /** Only events with a seq above this one (the position a truncated listing gives). */
  after?: number;
  json?: boolean;
}

export function auditEventsCommand(ctx: CommandContext): Command {
  const cmd = new Command('events')
    .summary('list audit events, filtered by type, time and user')
    .description(
      'List entries of the audit log (auditor or officer), oldest first. --type matches a type and its dotted children (login → login.ok, ' +
        'login.failed); --user matches who did it or whom it concerns. Entries never contain message content. When more ' +
        'events match than --limit, a note on stderr (with --json, "next") gives the seq to continue from with --after.',
    )
    .option('--type <type>', 'event type or prefix, e.g. login, deletion, room, message.accepted')
    .option('--since <time>', 'only events at or after this RFC 3339 time, e.g. 2026-03-01T00:00:00Z')
    .option('--user <login>', 'only events by or about this login')
    .option('--limit <n>', 'at most this many events (1–10000, default 1000)', wholeNumber('--limit', 1, 10_000))
    .option('--after <seq>', 'only events after this seq (continue a listing cut at --limit)', wholeNumber('--after', 0))
    .option('--json', 'print {events:[…], next} as JSON; next is the seq to continue after, or null when all were listed')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      'sigil audit events --type login --since 2026-03-01T00:00:00Z',
      'sigil audit events --user alee --json',
      'sigil audit events --type room',
      'sigil audit events --after 999',
    ],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: AuditEventsOptions, rt: Runtime): Promise<void> {
  const { UsageError } = await import('../../errors.js');
  const limit = opts.limit ?? 1000;
  if (opts.since !== undefined && (!/^\d{4}-\d{2}-\d{2}T/.test(opts.since) || Number.isNaN(Date.parse(opts.since)))) {
    throw new UsageError(`--since: expected an RFC 3339 time such as 2026-03-01T00:00:00Z, got "${opts.since}"`);
  }
  if (opts.type !== undefined && !/^[a-z][a-z0-9_.-]{0,63}$/.test(opts.type)) {
    throw new UsageError(`--type: expected a lowercase dotted event type such as login or room.entry, got "${opts.type}"`);
  }
  const { EventsAnswerSchema } = await import('../../audit/api.js');
  const http = await rt.client({ session: true });
  const query = (after: number, n: number) => {
    const q = new URLSearchParams({ after: String(after), limit: String(n) });
    if (opts.type) q.set('type', opts.type);
    if (opts.since) q.set('since', new Date(opts.since).toISOString());
    if (opts.user) q.set('user', opts.user);
    return http.get(`/v1/audit/events?${q}`, EventsAnswerSchema);
  };
  const events: import('../../audit/api.js').EventWire[] = [];
  // -1: from the first entry (seq 0).
  let after = opts.after ?? -1;
  let more = false;
  for (;;) {
    const page = await query(after, Math.min(1000, limit - events.length));
    events.push(...page.events);
    if (page.next === null) break;
    after = page.next;
    if (events.length >= limit) {
      // A full last page says nothing of what follows: ask for one more to know.
      more = (await query(after, 1)).events.length > 0;
      break;
    }
  }
  const next = more ? after : null;
  if (rt.json) return rt.out.json({ events, next });
  rt.out.table(
    events.map((e) => ({ ...e, data: e.data ? JSON.stringify(e.data) : undefined })),
    [
      ['seq', 'SEQ'],
      ['at', 'AT'],
      ['type', 'TYPE'],
      ['actor', 'ACTOR'],
      ['subject', 'SUBJECT'],
      ['data', 'DATA'],
    ],
  );
  if (next !== null) rt.out.note(`more events after seq ${next}: ${continueCommand(opts, next)}`);
}

/** The same listing from `after` on, as a command line to paste. */
function continueCommand(opts: AuditEventsOptions, after: number): string {
  const q = (v: string) => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  const flags: string[] = [];
  if (opts.type !== undefined) flags.push('--type', q(opts.type));
  if (opts.since !== undefined) flags.push('--since', q(opts.since));
  if (opts.user !== undefined) flags.push('--user', q(opts.user));
  if (opts.limit !== undefined) flags.push('--limit', String(opts.limit));
  return ['sigil audit events', ...flags, '--after', String(after)].join(' ');
}
