/**
 * `sigil login`: password + certificate. The flow (server/API.md, Auth):
 * 1. POST /v1/auth/challenge {login} → nonce (single use, bound to this TLS certificate);
 * 2. sign `{"login","nonce","purpose":"sigil-login"}` (CMS SignedData, detached) with the key;
 * 3. POST /v1/auth/login {login, password, nonce, signature} → session;
 * 4. first login on an envelope password: choose a new password and sign the envelope receipt
 *    `{"envelopeSerial","login","purpose":"sigil-envelope-receipt"}` → POST /v1/auth/first-login.
 */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { BadResponseError, UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface LoginOptions {
  login?: string;
  json?: boolean;
}

export function loginCommand(ctx: CommandContext): Command {
  const cmd = new Command('login')
    .summary('log in with password and certificate')
    .description(
      'Log in with your password and your certificate. On the first login with an envelope password you must choose ' +
        'a new password, and your key signs the envelope receipt.',
    )
    .option('--login <login>', 'login (default: the one in the profile)')
    .option('--json', 'print the session as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [
      envSection([
        [ENV.password, 'password (else prompted without echo)'],
        [ENV.newPassword, 'new password on the first login (else prompted twice)'],
        [ENV.keyPassphrase, 'passphrase of the private key (else prompted)'],
      ]),
    ],
    examples: ['sigil login', 'SIGIL_PASSWORD=… SIGIL_NEW_PASSWORD=… SIGIL_KEY_PASSPHRASE=… sigil login --login alee --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: LoginOptions, rt: Runtime): Promise<void> {
  const { ChallengeSchema, LoginSchema, OkSchema } = await import('../../api.js');
  const { signStatement } = await import('../../credentials.js');
  const config = await rt.config();
  const login = opts.login ?? config.login;
  if (!login) throw new UsageError('--login: no login given and none in the profile');
  const creds = await rt.unlock();
  const http = await rt.client({ session: false });
  // Ask before the challenge: the nonce lives 60 s and a person may type slowly.
  const password = await rt.io.prompter.secret(`Password for ${login}`, ENV.password);
  const { nonce } = await http.post('/v1/auth/challenge', { login }, ChallengeSchema);
  const signature = await signStatement({ purpose: 'sigil-login', login, nonce }, creds, rt.io.now());
  const session = await http.post('/v1/auth/login', { login, password, nonce, signature }, LoginSchema);
  await rt.profile.writeSession({ token: session.token, expiresAt: session.expiresAt, login, mustChangePassword: session.mustChangePassword });
  let receiptSigned = false;
  if (session.mustChangePassword) {
    if (!session.envelopeSerial) throw new BadResponseError('a password change is required but no envelopeSerial was given');
    rt.out.note('first login with the envelope password: choose a new password');
    const newPassword = await rt.io.prompter.newSecret('New password', ENV.newPassword);
    const receipt = await signStatement({ purpose: 'sigil-envelope-receipt', login, envelopeSerial: session.envelopeSerial }, creds, rt.io.now());
    await http.withToken(session.token).post('/v1/auth/first-login', { newPassword, receipt }, OkSchema);
    await rt.profile.writeSession({ token: session.token, expiresAt: session.expiresAt, login, mustChangePassword: false });
    receiptSigned = true;
  }
  if (config.login !== login) await rt.profile.writeConfig({ ...config, login });
  const a = session.account;
  if (rt.json) {
    return rt.out.json({ login, role: a.role, clearance: a.clearance, expiresAt: session.expiresAt, passwordChanged: receiptSigned, envelopeReceipt: receiptSigned ? session.envelopeSerial : undefined });
  }
  rt.out.fields([
    ['login', login],
    ['role', a.role],
    ['clearance', a.clearance.replace('-', ' ').toUpperCase()],
    ['session until', session.expiresAt],
    ...(receiptSigned ? ([['envelope receipt', `${session.envelopeSerial} signed`]] as [string, string][]) : []),
  ]);
}
