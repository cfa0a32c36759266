/** `sigil user create`: an account and its sealed-envelope password (officer). */
import { Command, Option } from 'commander';
import type { Envelope } from '../../api.js';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { stageFile } from '../../output-file.js';
import { ENV, type Runtime } from '../../runtime.js';
import { clearanceOption, ENVELOPE_NOTE, roleOption } from './options.js';

export interface UserCreateOptions {
  login: string;
  name: string;
  department: string;
  rank?: string;
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
    .option('--rank <rank>', 'rank or position, shown in the directory (sigil contacts)')
    .addOption(clearanceOption().makeOptionMandatory())
    .addOption(roleOption().default('staff'))
    .option('--envelope-out <file>', 'write the printable envelope (HTML) to this file, owner-only (0600); an existing file is replaced')
    .option('--json', 'print {account, envelope} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      'sigil user create --login alee --name "Ann Lee" --department Signals --clearance secret',
      'sigil user create --login cdoe --name "Cy Doe" --department Signals --rank "Head of unit" --clearance secret',
      'sigil user create --login bkim --name "Bo Kim" --department Audit --clearance confidential --role auditor --envelope-out bkim.html',
    ],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: UserCreateOptions, rt: Runtime): Promise<void> {
  const { UserCreatedSchema } = await import('../../api.js');
  await issueEnvelope(rt, opts.envelopeOut, async () => {
    const http = await rt.client({ session: true });
    return http.post(
      '/v1/users',
      { login: opts.login, fullName: opts.name, department: opts.department, rank: opts.rank, clearance: opts.clearance, role: opts.role },
      UserCreatedSchema,
    );
  });
}

/**
 * Gets an envelope from the appliance (`request`), writes its HTML to `htmlOut` if asked, then
 * prints the envelope text (or everything as JSON).
 *
 * The HTML holds the one-time password: it is a new owner-only (0600) file renamed over
 * `htmlOut` (output-file.ts), never an existing file rewritten with its old, perhaps
 * world-readable, mode. It is staged before the request, so an `htmlOut` that cannot be written
 * fails before an account or envelope exists; if writing it fails afterwards, the envelope is
 * still printed before the error, so its password is not lost.
 */
export async function issueEnvelope<T extends { envelope: Envelope }>(
  rt: Runtime,
  htmlOut: string | undefined,
  request: () => Promise<T>,
): Promise<void> {
  const html = htmlOut ? await stageFile(htmlOut, { mode: 0o600 }) : undefined;
  let result: T;
  try {
    result = await request();
    if (html) {
      try {
        await html.write(result.envelope.html);
        await html.commit();
      } catch (err) {
        printEnvelope(rt, result, undefined);
        throw err;
      }
    }
  } finally {
    await html?.discard();
  }
  printEnvelope(rt, result, htmlOut);
}

function printEnvelope(rt: Runtime, result: { envelope: Envelope }, htmlOut: string | undefined): void {
  if (rt.json) return rt.out.json(result);
  rt.out.line(result.envelope.text.trimEnd());
  if (htmlOut) rt.out.note(`printable envelope written to ${htmlOut}`);
}
