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
  json?: boolean;
}

export function auditEventsCommand(ctx: CommandContext): Command {
  const cmd = new Command('events')
    .summary('list audit events, filtered by type, time and user')
    .description(
      'List entries of the audit log (auditor or officer). --type matches a type and its dotted children (login → login.ok, ' +
        'login.failed); --user matches who did it or whom it concerns. Entries never contain message content.',
    )
    .option('--type <type>', 'event type or prefix, e.g. login, deletion, room, message.accepted')
    .option('--since <time>', 'only events at or after this RFC 3339 time, e.g. 2026-03-01T00:00:00Z')
    .option('--user <login>', 'only events by or about this login')
    .option('--limit <n>', 'at most this many events (1–10000, default 1000)', wholeNumber('--limit', 1, 10_000))
    .option('--json', 'print {events:[…]} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil audit events --type login --since 2026-03-01T00:00:00Z', 'sigil audit events --user alee --json', 'sigil audit events --type room'],
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
  const events: import('../../audit/api.js').EventWire[] = [];
  for (let after = -1; events.length < limit; ) {
    const q = new URLSearchParams({ after: String(after), limit: String(Math.min(1000, limit - events.length)) });
    if (opts.type) q.set('type', opts.type);
    if (opts.since) q.set('since', new Date(opts.since).toISOString());
    if (opts.user) q.set('user', opts.user);
    const page = await http.get(`/v1/audit/events?${q}`, EventsAnswerSchema);
    events.push(...page.events);
    if (page.next === null) break;
    after = page.next;
  }
  if (rt.json) return rt.out.json({ events });
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
}
