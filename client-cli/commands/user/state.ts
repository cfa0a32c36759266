/**
 * `sigil user disable|enable|unlock LOGIN`: account state changes (officer). One module, three
 * commands: they differ only in the path and the words.
 */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { printAccount } from '../auth/whoami.js';

export type StateVerb = 'disable' | 'enable' | 'unlock';

export interface UserStateOptions {
  login: string;
  json?: boolean;
}

const SUMMARY: Readonly<Record<StateVerb, string>> = {
  disable: 'disable an account',
  enable: 'enable a disabled account',
  unlock: 'unlock a locked account',
};

const WORDS: Readonly<Record<StateVerb, string>> = {
  disable: 'Disable an account: it can no longer log in and its sessions end (officer only).',
  enable: 'Enable a disabled account again (officer only).',
  unlock: 'Unlock an account locked after too many failed logins (officer only).',
};

export function userStateCommand(ctx: CommandContext, verb: StateVerb): Command {
  const cmd = new Command(verb)
    .summary(SUMMARY[verb])
    .description(WORDS[verb])
    .argument('<login>', 'login of the account')
    .option('--json', 'print the account as JSON')
    .action(action1(ctx, 'login', (opts: UserStateOptions, rt) => run(verb, opts, rt)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [`sigil user ${verb} alee`],
    exitCodes: [EXIT.auth],
  });
}

export async function run(verb: StateVerb, opts: UserStateOptions, rt: Runtime): Promise<void> {
  const { AccountSchema } = await import('../../api.js');
  const http = await rt.client({ session: true });
  const account = await http.post(`/v1/users/${encodeURIComponent(opts.login)}/${verb}`, {}, AccountSchema);
  if (rt.json) return rt.out.json(account);
  printAccount(rt, account);
}
