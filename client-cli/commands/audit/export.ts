/** `sigil audit export --out DIR`: the trail and what verifies it, for an offline machine. */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface AuditExportOptions {
  out: string;
  json?: boolean;
}

export function auditExportCommand(ctx: CommandContext): Command {
  const cmd = new Command('export')
    .summary('export entries, checkpoints, chain and CRL for offline verification')
    .description(
      'Write the audit trail into a new folder: entries (JSON lines), every checkpoint signed up to the latest one, that latest checkpoint as ' +
        'files openssl reads, the certificate chain, the pinned CA, the CRL and a README. Verify it later, on a machine ' +
        'without network, with `sigil audit verify --offline DIR`.',
    )
    .requiredOption('--out <dir>', 'a new (or empty) folder')
    .option('--json', 'print {dir, origin, size, checkpoints} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil audit export --out /media/audit/2026-03', 'sigil audit verify --offline /media/audit/2026-03 --ca sigil-root.pem'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: AuditExportOptions, rt: Runtime): Promise<void> {
  const { httpSource } = await import('../../audit/sources.js');
  const { onlineTrust } = await import('../../audit/online.js');
  const { writeExport } = await import('../../audit/export.js');
  const http = await rt.client({ session: true });
  const src = httpSource(http);
  const chainPem = await src.chain();
  const { pinnedPem, crlPem } = await onlineTrust(rt, http, chainPem);
  // The checkpoint list ends at the latest checkpoint taken above, so the export is one consistent
  // set even while the appliance signs newer ones.
  const r = await writeExport(opts.out, { source: src, checkpoints: src.checkpointWires(), chainPem, pinnedPem, ...(crlPem ? { crlPem } : {}), now: rt.io.now() });
  if (rt.json) return rt.out.json(r);
  rt.out.fields([
    ['exported', r.dir],
    ['log', r.origin],
    ['entries', r.size],
    ['checkpoints', r.checkpoints],
  ]);
  rt.out.note(`verify it offline: sigil audit verify --offline ${r.dir} --ca YOUR-PINNED-ROOT.pem`);
}
