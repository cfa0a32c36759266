/**
 * `sigil verify <message>` / `sigil verify --package DIR`: checks one message in full — signature
 * (RFC 5652 §5.6), chain to the pinned root and CRL (RFC 5280 §6), sender = signer, body digest,
 * ESS label = header label, label within the signer's clearance — and says why it fails (exit 3).
 * Online, the chain is judged at the receipt time the appliance recorded (read over TLS), the issuing
 * CA included, against the appliance's root CRL (messaging/root-crl.ts). With
 * `--package` it checks an evidence package written by `sigil export`, offline: the pinned root of
 * the profile is the only trust anchor, the package's chain and CRLs are only candidates, the issuing
 * CA is checked against the root's CRL (root-crl.pem, or one given with --crl), and the chain is
 * judged now, since the package holds no receipt time the appliance signed (package.ts).
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { runtimeFor, type CommandContext } from '../../context.js';
import { InputFileError, UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import type { MessageVerification } from '../../messaging/verify.js';
import type { Meeting } from '../../messaging/header.js';
import type { OnlineIssuingCaRevocation } from '../../messaging/root-crl.js';
import type { IssuingCaRevocation, PackageVerification } from './package.js';
import { oneLine } from '../../terminal-text.js';

export interface VerifyOptions {
  message?: string;
  package?: string;
  /**
   * With `package`: CRL files (PEM) to use besides the package's, applied by issuer (the root's to
   * the issuing CA, the issuing CA's to the signer); per issuer the highest CRL number is used.
   * One file name is accepted too.
   */
  crl?: string | string[];
  json?: boolean;
}

export function verifyCommand(ctx: CommandContext): Command {
  const cmd = new Command('verify')
    .summary('check one message (or an evidence package) in full')
    .description(
      'Verify one message: signature, certificate chain to the pinned CA, revocation (CRL), sender, body digest and ' +
        "label. Says exactly why it fails and exits 3. Online the chain is judged at the appliance's recorded receipt " +
        'time, so a message signed before its signer was revoked verifies as such; the issuing CA is judged at that ' +
        "time too, against the appliance's root CRL (GET /v1/crl/root, signed by the pinned root; an appliance without " +
        'one leaves it unchecked, with a note). With --package DIR, verifies an ' +
        'evidence package made by sigil export without the server (the profile’s pinned CA is the trust anchor; the ' +
        'body is not needed); the package holds no receipt time the appliance signed, so its chain and CRL are judged ' +
        'now: a certificate revoked or expired now fails, and receivedAt from message.json is shown, unproven. ' +
        "The issuing CA is checked against the root's CRL (root-crl.pem, signed by the pinned root): listed there, " +
        'the package fails as revoked (exit 3); a package without root-crl.pem is checked as before, with a note that ' +
        "the issuing CA's revocation was not checked. --crl FILE (repeatable) adds newer CRLs: one the root signed " +
        "(sigil crl fetch --root) judges the issuing CA, one the issuing CA signed (sigil crl fetch) judges the signer; " +
        'per issuer the highest CRL number wins.',
    )
    .argument('[message]', 'message id (shown by sigil read)')
    .option('--package <dir>', 'verify an evidence package written by sigil export instead')
    .option('--crl <file>', "with --package: a current CRL to judge revocation with, the issuing CA's (sigil crl fetch --out FILE) or the root's (sigil crl fetch --root --out FILE); repeat for both", (v: string, prev: string[] = []) => [...prev, v])
    .option('--json', 'print the verdict as JSON')
    .action(async (message: string | undefined, opts: VerifyOptions, c: Command) => run({ ...opts, message }, runtimeFor(ctx, c)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted; not needed with --package)']])],
    examples: [
      'sigil verify q3Jd0yP1xVfKX2aNw8e9Lg',
      'sigil verify --package ./evidence-q3Jd0yP1 --json',
      'sigil crl fetch --out current.crl.pem && sigil verify --package ./evidence-q3Jd0yP1 --crl current.crl.pem',
      'sigil crl fetch --root --out root.crl.pem && sigil verify --package ./evidence-q3Jd0yP1 --crl root.crl.pem --crl current.crl.pem',
    ],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: VerifyOptions, rt: Runtime): Promise<void> {
  if (Boolean(opts.message) === Boolean(opts.package)) throw new UsageError('give either a message id or --package DIR, not both or neither');
  const crlFiles = opts.crl === undefined ? [] : Array.isArray(opts.crl) ? opts.crl : [opts.crl];
  if (crlFiles.length > 0 && !opts.package) throw new UsageError('--crl: only with --package DIR (online, the appliance serves the current CRL)');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  let v: MessageVerification;
  let id: string;
  let pkg: PackageVerification | undefined;
  let online: { issuingCa: OnlineIssuingCaRevocation } | undefined;
  if (opts.package) {
    const { verifyPackage } = await import('./package.js');
    const crlPems: string[] = [];
    for (const file of crlFiles) crlPems.push(await readCrlFile(file));
    const pinnedPem = await rt.profile.read('ca');
    // The profile's kept root CRL, if a pinned root signed it (else a warning, as online).
    const { profileRootCrlStore, readKept } = await import('../../messaging/kept-root-crl.js');
    const { pinnedRoots } = await import('../../messaging/root-crl.js');
    const kept = await readKept(profileRootCrlStore(rt.profile), await pinnedRoots(pinnedPem));
    for (const w of kept.warnings) rt.out.note(`warning: ${w}`);
    pkg = await verifyPackage(opts.package, {
      pinnedPem,
      now: rt.io.now(),
      crlPems,
      crlNames: crlFiles,
      ...(kept.crl ? { keptRootCrl: kept.crl } : {}),
    });
    v = pkg.v;
    id = pkg.id;
  } else {
    if (!/^[A-Za-z0-9_-]{22}$/.test(opts.message as string)) throw new UsageError('<message>: expected a 22-character message id');
    const { MessagingSession } = await import('../../messaging/session.js');
    const { MessageSchema } = await import('../../messaging/api.js');
    const ms = await MessagingSession.open(rt);
    const m = await ms.http.get(`/v1/messages/${encodeURIComponent(opts.message as string)}`, MessageSchema);
    // The issuing CA is judged at the time the signer was (verify.ts: the appliance's receipt
    // time); the session warns once on stderr when a CRL it holds is stale now.
    const judged = await ms.judge(m);
    v = judged.v;
    online = { issuingCa: judged.issuingCa };
    id = m.id;
  }
  const { meetingSummary } = await import('../../messaging/render.js');
  printVerdict(rt, id, v, meetingSummary, pkg, online);
  if (pkg && !pkg.issuingCa.checked) {
    const { NO_ROOT_CRL_NOTE } = await import('./package.js');
    rt.out.note(`note: ${NO_ROOT_CRL_NOTE}`);
  }
  if (online && !online.issuingCa.checked) rt.out.note(`note: ${online.issuingCa.note ?? `the issuing CA's revocation was not checked: ${online.issuingCa.why}`}`);
  if (!v.ok) throw new MessageUnverifiedError(`message ${id} failed verification: ${v.reason}: ${v.detail}`);
}

async function readCrlFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw new InputFileError(file, 'a readable CRL file (PEM) for --crl', { cause });
  }
}

function printVerdict(
  rt: Runtime,
  id: string,
  v: MessageVerification,
  meetingSummary: (m: Meeting) => string,
  pkg?: PackageVerification,
  online?: { issuingCa: OnlineIssuingCaRevocation },
): void {
  // Package only: the time everything was judged at, and message.json's receipt time, unproven.
  // Online: the issuing CA's revocation, judged at the receipt time like the signer's.
  const offline = pkg
    ? { checkedAt: pkg.checkedAt.toISOString(), claimedReceivedAt: pkg.claimedReceivedAt ?? null, receivedAtProven: false, issuingCa: issuingCaJson(pkg.issuingCa) }
    : online
      ? { issuingCa: issuingCaJson(online.issuingCa) }
      : {};
  const claimed = pkg ? `${pkg.claimedReceivedAt ?? '(none)'} (message.json, not signed: unproven, not used)` : '';
  if (rt.json) {
    if (!v.ok) return rt.out.json({ id, verified: false, reason: v.reason, detail: v.detail, ...offline, ...(pkg?.note ? { note: pkg.note } : {}) });
    return rt.out.json({
      id,
      verified: true,
      signer: v.signer,
      signerSerial: v.signerCert.serialNumber,
      signerClearance: v.signerCert.clearance ?? null,
      label: v.header.label,
      sentAt: v.header.sentAt,
      signingTime: v.signingTime?.toISOString() ?? null,
      conversation: v.header.conversation,
      bodyChecked: v.bodyChecked,
      attachments: v.header.attachments.map((a) => ({ name: a.name, size: a.size, sha384: a.sha384 })),
      meeting: v.header.meeting ?? null,
      replyTo: v.header.replyTo,
      chain: v.chain.map((c) => c.subjectString),
      revokedLater: v.revokedLater ? { at: v.revokedLater.at.toISOString(), reason: v.revokedLater.reason } : null,
      ...offline,
    });
  }
  if (!v.ok) {
    // The detail may quote a certificate's subject, which whoever made the package chose.
    rt.out.line(`!! VERIFICATION FAILED: ${v.reason}: ${oneLine(v.detail)}`);
    if (pkg?.note) rt.out.line(`!! ${oneLine(pkg.note)}`);
    if (pkg) rt.out.fields([['checked at', `${pkg.checkedAt.toISOString()} (now)`], ['received', claimed], ['issuing CA', issuingCaText(pkg.issuingCa)]]);
    if (online) rt.out.fields([['issuing CA', issuingCaText(online.issuingCa)]]);
    return;
  }
  const caLater = online?.issuingCa.checked ? online.issuingCa.revokedLater : undefined;
  rt.out.fields([
    ['message', id],
    [
      'verdict',
      v.revokedLater
        ? `valid, signed before revocation (revoked ${v.revokedLater.at.toISOString()}, ${v.revokedLater.reason})`
        : caLater
          ? `valid, signed before revocation of the issuing CA (revoked ${caLater.revocationDate.toISOString()}, ${caLater.reason})`
          : 'valid',
    ],
    ['signed by', `${v.signer} (certificate ${v.signerCert.serialNumber}, clearance ${v.signerCert.clearance ?? 'none'})`],
    ['label', v.header.label.replace('-', ' ').toUpperCase()],
    ['sent', v.header.sentAt],
    ...(pkg
      ? ([
          ['received', claimed],
          ['checked at', `${pkg.checkedAt.toISOString()} (now: chain, validity and CRLs)`],
          ['issuing CA', issuingCaText(pkg.issuingCa)],
        ] as [string, string][])
      : []),
    ...(online ? ([['issuing CA', issuingCaText(online.issuingCa)]] as [string, string][]) : []),
    ['body digest', v.bodyChecked ? 'matches the signed SHA-384' : 'not checked (no body given)'],
    // A meeting is part of what was signed: who invited to what, who answered, who cancelled.
    ...(v.header.meeting ? ([['meeting', `${meetingSummary(v.header.meeting)}${v.header.replyTo ? ` ${v.header.replyTo}` : ''}`]] as [string, string][]) : []),
    ['chain', v.chain.map((c) => c.subjectString).join(' <- ')],
  ]);
}

function issuingCaJson(r: IssuingCaRevocation | OnlineIssuingCaRevocation): Record<string, unknown> {
  if (!r.checked) return { checked: false, why: r.why };
  // Online only: the issuing CA revoked after the receipt time (the package path has no such key).
  const later = 'revokedLater' in r ? r.revokedLater : undefined;
  return {
    checked: true,
    rootCrlNumber: r.rootCrlNumber,
    rootCrlFrom: r.rootCrlFrom,
    nextUpdate: r.nextUpdate.toISOString(),
    stale: r.stale,
    revoked: r.revoked ? { subject: r.revoked.subject, serial: r.revoked.serialNumber, at: r.revoked.revocationDate.toISOString(), reason: r.revoked.reason } : null,
    ...(later ? { revokedLater: { subject: later.subject, serial: later.serialNumber, at: later.revocationDate.toISOString(), reason: later.reason } } : {}),
  };
}

/** The issuing CA's revocation status, one line for people. */
function issuingCaText(r: IssuingCaRevocation | OnlineIssuingCaRevocation): string {
  if (!r.checked) return `revocation not checked (${r.why})`;
  const crl = `root CRL #${r.rootCrlNumber} from ${r.rootCrlFrom}, next update ${r.nextUpdate.toISOString()}`;
  if (r.revoked) return `REVOKED ${r.revoked.revocationDate.toISOString()} (${r.revoked.reason}) by the ${crl}`;
  const later = 'revokedLater' in r ? r.revokedLater : undefined;
  if (later && !r.stale) return `revoked ${later.revocationDate.toISOString()} (${later.reason}), after the receipt time, by the ${crl}`;
  return r.stale ? `root CRL stale (${crl})` : `not revoked (checked against the ${crl})`;
}
