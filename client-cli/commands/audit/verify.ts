/** `sigil audit verify`: recompute and check the whole audit trail, online or from an export. */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface AuditVerifyOptions {
  since?: string;
  offline?: string;
  ca?: string;
  json?: boolean;
}

export function auditVerifyCommand(ctx: CommandContext): Command {
  const cmd = new Command('verify')
    .summary('verify the audit trail: signatures, every entry, and consistency with a saved checkpoint')
    .description(
      'Download every entry and checkpoint (or read them from an export folder with --offline), verify each checkpoint\'s ' +
        'signature and audit certificate, recompute every leaf hash and the root at each checkpoint, and check that the log ' +
        'extends the saved checkpoint (--since, default <profile>/audit/checkpoint.json when it exists). ' +
        'The trail is verified as of the latest checkpoint, taken first; checkpoints the appliance signs meanwhile are not ' +
        'part of it. Names the first failing entry (seq and reason).',
    )
    .option('--since <file>', 'a checkpoint saved earlier by `sigil audit checkpoint`')
    .option('--offline <dir>', 'verify an export folder made by `sigil audit export`; no network')
    .option('--ca <file>', 'pinned CA certificate(s) (default: the profile\'s; with --offline and no profile, the export\'s ca.pem)')
    .option('--json', 'print the result as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (online only; else prompted)']])],
    examples: [
      'sigil audit verify',
      'sigil audit verify --since /media/audit/2026-03-01.json',
      'sigil audit verify --offline ./audit-2026-03 --ca sigil-root.pem',
    ],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: AuditVerifyOptions, rt: Runtime): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { readSaved, savedCheckpointPath, trustFrom } = await import('../../audit/checkpoint.js');
  const { verifyTrail } = await import('../../audit/verify.js');
  const { AuditFileError, AuditVerifyFailedError } = await import('../../audit/errors.js');
  const sources = await import('../../audit/sources.js');
  const readText = (path: string) =>
    readFile(path, 'utf8').catch((err) => {
      throw new AuditFileError(path, 'cannot be read', err);
    });
  const readOpt = (path: string) => readFile(path, 'utf8').catch(() => undefined);

  // --since given: it must exist; else the profile's saved checkpoint, when there is one. That one
  // is what a rewritten trail is judged against, so it counts only from a profile that is the
  // user's alone (PROFILE_UNSAFE otherwise), like every other profile file.
  if (!opts.since) await rt.profile.ensureSafe();
  const savedFile = opts.since ?? savedCheckpointPath(rt.profile.dir);
  const saved = await readSaved(savedFile);
  if (opts.since && !saved) throw new AuditFileError(opts.since, 'does not exist');

  let result;
  if (opts.offline) {
    const dir = opts.offline;
    const f = sources.EXPORT_FILES;
    // Said first, so a mistyped folder is not reported as its missing ca.pem.
    const { stat } = await import('node:fs/promises');
    if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) {
      throw new AuditFileError(dir, 'is not a folder: give the folder written by sigil audit export');
    }
    let pinned = opts.ca ? await readText(opts.ca) : await rt.profile.readOptional('ca').catch(() => undefined);
    if (pinned === undefined) {
      pinned = await readText(join(dir, f.ca));
      rt.out.note(`note: trusting the CA in ${join(dir, f.ca)}; pin your own with --ca`);
    }
    const trust = trustFrom(pinned, (await readOpt(join(dir, f.chain))) ?? '', await readOpt(join(dir, f.crl)));
    result = await verifyTrail(sources.dirSource(dir), { trust, ...(saved ? { saved } : {}) });
  } else {
    const { onlineTrust } = await import('../../audit/online.js');
    const http = await rt.client({ session: true });
    const src = sources.httpSource(http);
    const { trust } = await onlineTrust(rt, http, await src.chain());
    if (opts.ca) trust.anchors = (await import('../../../pki/index.js')).Certificate.fromPemBundle(await readText(opts.ca));
    result = await verifyTrail(src, { trust, ...(saved ? { saved } : {}) });
  }
  if (!result.ok) {
    if (rt.json) rt.out.json({ ok: false, reason: result.reason, seq: result.seq ?? null, detail: result.detail });
    throw new AuditVerifyFailedError(result.reason, result.detail, result.seq);
  }
  const out = {
    ok: true,
    origin: result.origin,
    size: result.size,
    root: Buffer.from(result.root).toString('base64'),
    time: result.time.toISOString(),
    checkpoints: result.checkpoints,
    later: result.later,
    since: result.since ?? null,
    source: opts.offline ?? 'appliance',
  };
  if (rt.json) return rt.out.json(out);
  if (out.later > 0) {
    rt.out.note(`note: ${out.later} listed checkpoint${out.later === 1 ? ' was' : 's were'} signed after the latest one (${out.time}) and not checked`);
  }
  rt.out.fields([
    ['verified', `${out.size} entries of ${out.origin}`],
    ['root', out.root],
    ['latest checkpoint', out.time],
    ['checkpoints checked', out.checkpoints],
    ['extends saved', out.since === null ? 'no saved checkpoint' : `size ${out.since} (${savedFile})`],
    ['source', out.source],
  ]);
}
