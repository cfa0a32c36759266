/**
 * The `sigil` command tree. `sigil <noun> <verb>` for administration (`sigil cert issue`), with the
 * daily verbs standing alone (`sigil login`, later `sigil send`, `sigil inbox`). Built fresh per
 * process by `buildProgram(ctx)`, so tests can walk it (help sections) without running anything.
 *
 * Messaging (send/read/inbox/watch/download/delete/group) and audit commands slot in here as
 * further `addCommand` calls, each a `commands/<noun>/<verb>.ts` with a builder and a `run()`.
 */
import { Command, Option } from 'commander';
import { auditCommand } from './commands/audit/index.js';
import { certCommand } from './commands/cert/index.js';
import { crlCommand } from './commands/crl/index.js';
import { loginCommand } from './commands/auth/login.js';
import { logoutCommand } from './commands/auth/logout.js';
import { passwdCommand } from './commands/auth/passwd.js';
import { whoamiCommand } from './commands/auth/whoami.js';
import { keygenCommand } from './commands/key/keygen.js';
import { passphraseCommand } from './commands/key/passphrase.js';
import { setupCommand } from './commands/profile/setup.js';
import { userCommand } from './commands/user/index.js';
import { deleteCommand } from './commands/message/delete.js';
import { downloadCommand } from './commands/message/download.js';
import { inboxCommand } from './commands/message/inbox.js';
import { readCommand } from './commands/message/read.js';
import { sendCommand } from './commands/message/send.js';
import { watchCommand } from './commands/message/watch.js';
import { muteCommand, unmuteCommand } from './commands/message/mute.js';
import { contactsCommand } from './commands/directory/contacts.js';
import { filesCommand } from './commands/message/files.js';
import { searchCommand } from './commands/message/search.js';
import { groupCommand } from './commands/group/index.js';
import { meetingCommand } from './commands/meeting/index.js';
import { exportCommand } from './commands/evidence/export.js';
import { verifyCommand } from './commands/evidence/verify.js';
import type { CommandContext } from './context.js';
import { EXIT } from './exit-codes.js';
import { envSection, withHelp } from './help.js';
import { ENV } from './runtime.js';
import { VERSION } from './version.js';

/** Every command in the tree, depth first (the root included). */
export function allCommands(root: Command): Command[] {
  return [root, ...root.commands.flatMap((c) => allCommands(c))];
}

/** The full command line of `cmd`, e.g. `sigil cert issue`. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function buildProgram(ctx: CommandContext): Command {
  const program = new Command('sigil')
    .description(
      'Sigil workstation client: log in with password and certificate; send, read and delete signed messages and files; ' +
        'verify messages and the audit trail; manage accounts and certificates (officers).',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .addOption(new Option('--profile <dir>', 'profile folder (default: $SIGIL_PROFILE, else the per-user config folder)'))
    .addCommand(setupCommand(ctx))
    .addCommand(keygenCommand(ctx))
    .addCommand(passphraseCommand(ctx))
    .addCommand(loginCommand(ctx))
    .addCommand(logoutCommand(ctx))
    .addCommand(passwdCommand(ctx))
    .addCommand(whoamiCommand(ctx))
    .addCommand(certCommand(ctx))
    .addCommand(userCommand(ctx))
    .addCommand(crlCommand(ctx))
    .addCommand(contactsCommand(ctx))
    .addCommand(sendCommand(ctx))
    .addCommand(inboxCommand(ctx))
    .addCommand(readCommand(ctx))
    .addCommand(watchCommand(ctx))
    .addCommand(searchCommand(ctx))
    .addCommand(muteCommand(ctx))
    .addCommand(unmuteCommand(ctx))
    .addCommand(filesCommand(ctx))
    .addCommand(downloadCommand(ctx))
    .addCommand(deleteCommand(ctx))
    .addCommand(groupCommand(ctx))
    .addCommand(meetingCommand(ctx))
    .addCommand(verifyCommand(ctx))
    .addCommand(exportCommand(ctx))
    .addCommand(auditCommand(ctx));
  withHelp(program, {
    sections: [
      envSection([
        [ENV.profile, 'profile folder (overridden by --profile)'],
        [ENV.password, 'account password, instead of a prompt'],
        [ENV.newPassword, 'new password (first login, passwd), instead of a prompt'],
        [ENV.keyPassphrase, 'private key passphrase or PKCS#12 password, instead of a prompt'],
        [ENV.debug, '1: print the cause chain of errors'],
      ]),
    ],
    examples: [
      'sigil setup --server https://10.1.0.5:8443 --ca sigil-ca.pem',
      'sigil keygen --login alee --out alee.csr.pem',
      'sigil cert import alee.cert.pem',
      'sigil login',
      'sigil whoami',
    ],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
  for (const cmd of allCommands(program)) {
    // Parse errors are thrown to main.ts, which maps them to exit 2; no process.exit inside commander.
    cmd.exitOverride();
    // Unknown excess arguments are a usage error, not silently ignored.
    cmd.allowExcessArguments(false);
  }
  return program;
}
