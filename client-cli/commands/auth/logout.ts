/** `sigil logout`: ends the session on the server and forgets the token. */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { ServerError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface LogoutOptions {
  json?: boolean;
}

export function logoutCommand(ctx: CommandContext): Command {
  const cmd = new Command('logout')
    .summary('end the session')
    .description('End the session on the server and delete the saved token. Without a session, does nothing.')
    .option('--json', 'print the result as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil logout'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(_opts: LogoutOptions, rt: Runtime): Promise<void> {
  const { OkSchema } = await import('../../api.js');
  const session = await rt.profile.session();
  let ended = false;
  if (session) {
    try {
      const http = await rt.client({ session: true });
      await http.post('/v1/auth/logout', {}, OkSchema);
      ended = true;
    } catch (err) {
      // A session the server no longer knows is as good as ended; anything else is reported,
      // but the token is forgotten either way so a stale one is never reused.
      const gone = err instanceof ServerError && err.status === 401;
      const expired = (err as { code?: string }).code === 'NOT_LOGGED_IN';
      if (!gone && !expired) {
        await rt.profile.remove('session');
        throw err;
      }
    }
    await rt.profile.remove('session');
  }
  if (rt.json) return rt.out.json({ loggedOut: true, serverSessionEnded: ended });
  rt.out.note(session ? 'logged out' : 'no session');
}
