/** `sigil audit checkpoint`: fetch the latest signed checkpoint, verify it, and save it. */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface AuditCheckpointOptions {
  out?: string;
  save?: boolean;
  json?: boolean;
}

export function auditCheckpointCommand(ctx: CommandContext): Command {
  const cmd = new Command('checkpoint')
    .summary('fetch, verify and save the latest signed checkpoint')
    .description(
      'Fetch the appliance\'s latest signed checkpoint (origin, tree size, root hash, time), check its signature and the audit ' +
        'certificate against the pinned CA, check that it extends the checkpoint saved before (consistency proof), and save it ' +
        '(default <profile>/audit/checkpoint.json) for a later `sigil audit verify --since`.',
    )
    .option('--out <file>', 'save here instead of <profile>/audit/checkpoint.json')
    .option('--no-save', 'verify and print only')
    .option('--json', 'print the checkpoint as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil audit checkpoint', 'sigil audit checkpoint --out /media/audit/2026-03-01.json', 'sigil audit checkpoint --no-save --json'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: AuditCheckpointOptions, rt: Runtime): Promise<void> {
  const { httpSource } = await import('../../audit/sources.js');
  const { onlineTrust, savedPath } = await import('../../audit/online.js');
  const { checkCheckpoint, readSaved, savedNote, writeSaved } = await import('../../audit/checkpoint.js');
  const { verifyConsistency } = await import('../../audit/merkle.js');
  const { AuditVerifyFailedError } = await import('../../audit/errors.js');
  const http = await rt.client({ session: true });
  const src = httpSource(http);
  const { trust } = await onlineTrust(rt, http, await src.chain());
  const note = await src.latest();
  const checked = await checkCheckpoint(note, trust);
  if (!checked.ok) throw new AuditVerifyFailedError('checkpoint-invalid', checked.detail);
  const cp = checked.checkpoint;
  const path = savedPath(rt, opts.out);
  // A saved checkpoint is replaced only by one that provably extends it.
  const prev = await readSaved(path);
  let extended: number | undefined;
  if (prev) {
    const p = await checkCheckpoint(savedNote(prev), trust);
    if (!p.ok) throw new AuditVerifyFailedError('checkpoint-invalid', `saved checkpoint ${path}: ${p.detail}`);
    if (p.checkpoint.origin !== cp.origin) throw new AuditVerifyFailedError('origin-mismatch', `${path} is of log "${p.checkpoint.origin}", the appliance serves "${cp.origin}"`);
    if (p.checkpoint.size > cp.size) throw new AuditVerifyFailedError('rollback', `${path} covers ${p.checkpoint.size} entries, the appliance now signs ${cp.size}`);
    const proof = await src.consistency!(p.checkpoint.size, cp.size).catch((err: Error) => {
      throw new AuditVerifyFailedError('inconsistent', `no consistency proof from ${p.checkpoint.size} to ${cp.size}: ${err.message}`);
    });
    const c = verifyConsistency(p.checkpoint.size, cp.size, p.checkpoint.root, cp.root, proof);
    if (!c.ok) throw new AuditVerifyFailedError('inconsistent', `the log no longer extends ${path} (size ${p.checkpoint.size}): ${c.detail}; history was rewritten`);
    extended = p.checkpoint.size;
  }
  if (opts.save !== false) await writeSaved(path, note, cp, rt.io.now());
  const result = {
    origin: cp.origin,
    size: cp.size,
    root: Buffer.from(cp.root).toString('base64'),
    time: cp.time.toISOString(),
    signer: checked.signer.subjectString,
    extends: extended ?? null,
    saved: opts.save !== false ? path : null,
  };
  if (rt.json) return rt.out.json(result);
  rt.out.fields([
    ['origin', result.origin],
    ['tree size', result.size],
    ['root', result.root],
    ['signed at', result.time],
    ['signed by', result.signer],
    ['extends saved', extended === undefined ? 'no earlier checkpoint' : `size ${extended} (consistency proof verified)`],
    ['saved', result.saved],
  ]);
}
