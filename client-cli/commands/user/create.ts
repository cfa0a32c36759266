/** `sigil user create`: an account and its sealed-envelope password (officer). */
import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import type { Envelope } from '../../api.js';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { clearanceOption, ENVELOPE_NOTE, roleOption } from './options.js';

export interface UserCreateOptions {
  login: string;
  name: string;
  department: string;
  clearance: string;
  role: string;
  envelopeOut?: string;
  json?: boolean;
}

export function userCreateCommand(ctx: CommandContext): Command {
  const cmd = new Command('create')
    .summary('create an account and print its envelope')
    .description('Create an account (officer only). ' + ENVELOPE_NOTE)
    .addOption(new Option('--login <login>', 'login of the new account').makeOptionMandatory())
    .addOption(new Option('--name <full name>', 'full name').makeOptionMandatory())
    .addOption(new Option('--department <department>', 'department').makeOptionMandatory())
    .addOption(clearanceOption().makeOptionMandatory())
    .addOption(roleOption().default('staff'))
    .option('--envelope-out <file>', 'write the printable envelope (HTML) to this file')
    .option('--json', 'print {account, envelope} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      'sigil user create --login alee --name "Ann Lee" --department Signals --clearance secret',
      'sigil user create --login bkim --name "Bo Kim" --department Audit --clearance confidential --role auditor --envelope-out bkim.html',
    ],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: UserCreateOptions, rt: Runtime): Promise<void> {
  const { UserCreatedSchema } = await import('../../api.js');
  const http = await rt.client({ session: true });
  const created = await http.post(
    '/v1/users',
    { login: opts.login, fullName: opts.name, department: opts.department, clearance: opts.clearance, role: opts.role },
    UserCreatedSchema,
  );
  await printEnvelope(rt, created.envelope, opts.envelopeOut, created);
}

/** Writes the HTML envelope if asked, then prints the envelope text (or everything as JSON). */
export async function printEnvelope(rt: Runtime, envelope: Envelope, htmlOut: string | undefined, jsonValue: unknown): Promise<void> {
  if (htmlOut) await writeFile(htmlOut, envelope.html, { mode: 0o600 });
  if (rt.json) return rt.out.json(jsonValue);
  rt.out.line(envelope.text.trimEnd());
  if (htmlOut) rt.out.note(`printable envelope written to ${htmlOut}`);
}
