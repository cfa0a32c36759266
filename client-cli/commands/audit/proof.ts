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
        'audit index), and verify both. Auditors and officers also get the entry itself: its leaf hash is recomputed ' +
        'from its data (SHA-256 of 0x00 and the data), its seq must be SEQ, and that hash must lead to the signed root, ' +
        'so an entry changed on the appliance fails. Any other role gets hashes only: what is proven then is that the ' +
        'leaf hash the appliance gave is at SEQ, not what the entry says.',
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

/** Server codes that mean the appliance's stored tree is damaged or disagrees with what it signed. */
const TREE_REFUSALS: Readonly<Record<string, string>> = {
  AUDIT_TREE_DAMAGED: 'tree-damaged',
  AUDIT_CHECKPOINT_MISMATCH: 'checkpoint-mismatch',
};

/** The fields of an entry's leaf data the output shows (`{v, seq, at, type, actor?, subject?, data?}`). */
interface ProvenEntry {
  seq: number;
  at: string;
  type: string;
  actor?: string;
  subject?: string;
}

export async function run(opts: AuditProofOptions, rt: Runtime): Promise<void> {
  const { UsageError, ServerError } = await import('../../errors.js');
  const seq = Number(opts.seq);
  if (!/^\d{1,15}$/.test(opts.seq) || !Number.isSafeInteger(seq)) throw new UsageError(`SEQ: expected a non-negative integer, got "${opts.seq}"`);
  const { httpSource } = await import('../../audit/sources.js');
  const { onlineTrust } = await import('../../audit/online.js');
  const { checkCheckpoint } = await import('../../audit/checkpoint.js');
  const { hashEq, leafHash, verifyInclusion } = await import('../../audit/merkle.js');
  const { InclusionAnswerSchema, b64bytes } = await import('../../audit/api.js');
  const { AuditVerifyFailedError } = await import('../../audit/errors.js');
  const fail = (reason: string, detail: string): InstanceType<typeof AuditVerifyFailedError> => new AuditVerifyFailedError(reason, detail, seq);
  // The appliance saying its own tree is damaged or rewritten is a failed verification (exit 3), not a crash.
  const asVerification = (err: unknown): never => {
    const reason = err instanceof ServerError ? TREE_REFUSALS[err.code] : undefined;
    if (reason !== undefined) throw fail(reason, `the appliance says: ${(err as Error).message}`);
    throw err;
  };

  const http = await rt.client({ session: true });
  const src = httpSource(http);
  const { trust } = await onlineTrust(rt, http, await src.chain().catch(asVerification));
  const checked = await checkCheckpoint(await src.latest().catch(asVerification), trust);
  if (!checked.ok) throw new AuditVerifyFailedError('checkpoint-invalid', checked.detail);
  const cp = checked.checkpoint;
  if (seq >= cp.size) throw fail('not-included', `the latest checkpoint covers entries 0..${cp.size - 1}`);
  const p = await http.get(`/v1/audit/proofs/inclusion?index=${seq}&size=${cp.size}`, InclusionAnswerSchema).catch(asVerification);
  if (p.leafHash === null) throw fail('not-included', 'the appliance has no such entry');
  const given = b64bytes(p.leafHash);

  // With the entry: the leaf is what we hash ourselves, never the appliance's word for it.
  let leaf = given;
  let entry: ProvenEntry | undefined;
  if (p.leafData !== undefined) {
    entry = parseEntry(p.leafData, seq, fail);
    leaf = leafHash(new TextEncoder().encode(p.leafData));
    if (!hashEq(leaf, given)) {
      throw fail('entry-mismatch', `the entry's data hashes to ${b64(leaf)}, the appliance's leaf hash is ${p.leafHash}: the entry was changed`);
    }
  }
  const v = verifyInclusion(leaf, seq, cp.size, p.proof.map(b64bytes), cp.root);
  if (!v.ok) throw fail('not-included', v.detail);

  const time = cp.time.toISOString();
  const proven = entry
    ? `entry ${seq} as shown (its data hashed here) is in the checkpoint of size ${cp.size} signed ${time}`
    : `the leaf hash the appliance gave for entry ${seq} is in the checkpoint of size ${cp.size} signed ${time}; ` +
      "the entry itself is shown only to auditors and officers, so what it says was not checked";
  const out = {
    seq,
    leafHash: b64(leaf),
    size: cp.size,
    root: b64(cp.root),
    time,
    included: true,
    entryChecked: entry !== undefined,
    ...(entry ? { entry, leafData: p.leafData } : {}),
    proven,
  };
  if (rt.json) return rt.out.json(out);
  rt.out.fields([
    ['entry', seq],
    ...(entry
      ? ([
          ['type', entry.type],
          ['at', entry.at],
          ...(entry.actor !== undefined ? [['actor', entry.actor] as [string, unknown]] : []),
          ...(entry.subject !== undefined ? [['subject', entry.subject] as [string, unknown]] : []),
        ] as [string, unknown][])
      : []),
    ['leaf hash', out.leafHash + (entry ? ' (recomputed from the entry)' : ' (as given by the appliance)')],
    ['included in', `checkpoint of size ${out.size} signed ${out.time}`],
    ['root', out.root],
    ['proven', proven],
  ]);
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** The entry's own fields; its seq must be the one asked for (a moved entry carries another). */
function parseEntry(leafData: string, seq: number, fail: (reason: string, detail: string) => Error): ProvenEntry {
  let obj: unknown;
  try {
    obj = JSON.parse(leafData);
  } catch {
    throw fail('entry-mismatch', 'the entry data is not JSON');
  }
  const e = obj as Partial<Record<keyof ProvenEntry, unknown>> | null;
  if (typeof e !== 'object' || e === null || Array.isArray(e) || typeof e.type !== 'string' || typeof e.at !== 'string') {
    throw fail('entry-mismatch', 'the entry data is not an audit entry {v, seq, at, type, …}');
  }
  if (e.seq !== seq) throw fail('entry-mismatch', `the entry data says seq ${String(e.seq)}, not ${seq}`);
  return {
    seq,
    at: e.at,
    type: e.type,
    ...(typeof e.actor === 'string' ? { actor: e.actor } : {}),
    ...(typeof e.subject === 'string' ? { subject: e.subject } : {}),
  };
}
