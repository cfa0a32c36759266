/** `sigil audit proof SEQ`: prove that one entry (e.g. a message receipt's audit index) is in the signed log. */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface AuditProofOptions {
  seq: string;
  json?: boolean;
}

export function auditProofCommand(ctx: CommandContext): Command {
  const cmd = new Command('proof')
    .summary('verify that an entry is included in the latest signed checkpoint')
    .description(
      'Fetch the latest signed checkpoint and an RFC 9162 inclusion proof of entry SEQ (a message receipt carries its ' +
        'audit index), and verify both. Any role may run it: proofs hold hashes only.',
    )
    .argument('<seq>', 'the entry index (audit.index of a receipt)')
    .option('--json', 'print the result as JSON')
    .action(action1(ctx, 'seq', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil audit proof 1042', 'sigil audit proof 1042 --json'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: AuditProofOptions, rt: Runtime): Promise<void> {
  const { UsageError } = await import('../../errors.js');
  const seq = Number(opts.seq);
  if (!/^\d{1,15}$/.test(opts.seq) || !Number.isSafeInteger(seq)) throw new UsageError(`SEQ: expected a non-negative integer, got "${opts.seq}"`);
  const { httpSource } = await import('../../audit/sources.js');
  const { onlineTrust } = await import('../../audit/online.js');
  const { checkCheckpoint } = await import('../../audit/checkpoint.js');
  const { verifyInclusion } = await import('../../audit/merkle.js');
  const { InclusionAnswerSchema, b64bytes } = await import('../../audit/api.js');
  const { AuditVerifyFailedError } = await import('../../audit/errors.js');
  const http = await rt.client({ session: true });
  const src = httpSource(http);
  const { trust } = await onlineTrust(rt, http, await src.chain());
  const checked = await checkCheckpoint(await src.latest(), trust);
  if (!checked.ok) throw new AuditVerifyFailedError('checkpoint-invalid', checked.detail);
  const cp = checked.checkpoint;
  if (seq >= cp.size) throw new AuditVerifyFailedError('not-included', `the latest checkpoint covers entries 0..${cp.size - 1}`, seq);
  const p = await http.get(`/v1/audit/proofs/inclusion?index=${seq}&size=${cp.size}`, InclusionAnswerSchema);
  if (p.leafHash === null) throw new AuditVerifyFailedError('not-included', 'the appliance has no such entry', seq);
  const v = verifyInclusion(b64bytes(p.leafHash), seq, cp.size, p.proof.map(b64bytes), cp.root);
  if (!v.ok) throw new AuditVerifyFailedError('not-included', v.detail, seq);
  const out = { seq, leafHash: p.leafHash, size: cp.size, root: Buffer.from(cp.root).toString('base64'), time: cp.time.toISOString(), included: true };
  if (rt.json) return rt.out.json(out);
  rt.out.fields([
    ['entry', seq],
    ['leaf hash', out.leafHash],
    ['included in', `checkpoint of size ${out.size} signed ${out.time}`],
    ['root', out.root],
  ]);
}
