/** `sigil cert revoke SERIAL --reason R`: revoke a certificate (officer); its sessions end and a new CRL is published. */
import { Command, Option } from 'commander';
import { REVOCATION_REASONS } from '../../choices.js';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { confirmOrYes } from '../user/reset.js';

export interface CertRevokeOptions {
  serial: string;
  reason: string;
  yes?: boolean;
  json?: boolean;
}

export function certRevokeCommand(ctx: CommandContext): Command {
  const cmd = new Command('revoke')
    .summary('revoke a certificate')
    .description(
      'Revoke a certificate (officer only). Its holder can no longer log in or send, and its sessions end; messages signed ' +
        'before the revocation still verify. The appliance publishes a new CRL listing it before it answers: ' +
        'nothing more to run (sigil crl fetch gets that CRL).',
    )
    .argument('<serial>', 'serial number (hex) from sigil cert list')
    .addOption(new Option('--reason <reason>', 'RFC 5280 revocation reason').choices(REVOCATION_REASONS).makeOptionMandatory())
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .option('--json', 'print {serial, revokedAt, reason, sameKey} as JSON (sameKey: the serials of the same key revoked with it)')
    .action(action1(ctx, 'serial', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil cert revoke 3f9a0c11d2 --reason keyCompromise', 'sigil cert revoke 3f9a0c11d2 --reason superseded --yes --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: CertRevokeOptions, rt: Runtime): Promise<void> {
  const { RevokedSchema } = await import('../../api.js');
  await confirmOrYes(rt, opts.yes, `Revoke certificate ${opts.serial} (${opts.reason})? This cannot be undone`);
  const http = await rt.client({ session: true });
  const revoked = await http.post(`/v1/certificates/${encodeURIComponent(opts.serial)}/revoke`, { reason: opts.reason }, RevokedSchema);
  if (rt.json) return rt.out.json(revoked);
  rt.out.fields([
    ['serial', revoked.serial],
    ['revoked', revoked.revokedAt],
    ['reason', revoked.reason],
    // The key's other certificates (a renewal keeps the key) went with it: say which.
    ...(revoked.sameKey ?? []).map((serial): [string, string] => ['also revoked (same key)', serial]),
  ]);
}
