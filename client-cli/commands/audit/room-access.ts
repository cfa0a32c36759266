/** `sigil audit room-access`: record an entry to or exit from the appliance's room (officer). */
import { Command, Option } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface AuditRoomAccessOptions {
  pass: string;
  person: string;
  direction: 'entry' | 'exit';
  at?: string;
  json?: boolean;
}

export function auditRoomAccessCommand(ctx: CommandContext): Command {
  const cmd = new Command('room-access')
    .summary("record an entry to or exit from the appliance's room (officer)")
    .description(
      "Record in the audit log that a person passed into or out of the appliance's guarded room by pass (the room access " +
        'register). Each record is an audit entry covered by the signed checkpoints. List them with `sigil audit events --type room`.',
    )
    .requiredOption('--pass <number>', 'pass number, e.g. P-0042')
    .requiredOption('--person <name>', 'who passed')
    .addOption(new Option('--direction <dir>', 'entry or exit').choices(['entry', 'exit']).makeOptionMandatory())
    .option('--at <time>', 'when (RFC 3339); default now')
    .option('--json', 'print the record as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      'sigil audit room-access --pass P-0042 --person "Ivan Petrov" --direction entry',
      'sigil audit room-access --pass P-0042 --person "Ivan Petrov" --direction exit --at 2026-03-01T17:05:00Z',
    ],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: AuditRoomAccessOptions, rt: Runtime): Promise<void> {
  const { UsageError } = await import('../../errors.js');
  if (opts.at !== undefined && (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(opts.at) || Number.isNaN(Date.parse(opts.at)))) {
    throw new UsageError(`--at: expected an RFC 3339 time such as 2026-03-01T17:05:00Z, got "${opts.at}"`);
  }
  const { RoomAccessAnswerSchema } = await import('../../audit/api.js');
  const http = await rt.client({ session: true });
  const body = { pass: opts.pass, person: opts.person, direction: opts.direction, ...(opts.at ? { at: new Date(opts.at).toISOString() } : {}) };
  const r = await http.post('/v1/audit/room-access', body, RoomAccessAnswerSchema);
  if (rt.json) return rt.out.json(r);
  rt.out.fields([
    ['recorded', `${r.direction} of ${r.person} (pass ${r.pass}) at ${r.at}`],
    ['audit entry', r.seq],
    ['recorded by', r.recordedBy],
  ]);
}
