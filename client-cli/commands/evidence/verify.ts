/**
 * `sigil verify <message>` / `sigil verify --package DIR`: checks one message in full — signature
 * (RFC 5652 §5.6), chain to the pinned root and CRL (RFC 5280 §6), sender = signer, body digest,
 * ESS label = header label, label within the signer's clearance — and says why it fails (exit 3).
 * With `--package` it checks an evidence package written by `sigil export`, offline: the pinned
 * root of the profile is the only trust anchor; the package's chain and CRL are only candidates.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { runtimeFor, type CommandContext } from '../../context.js';
import { InputFileError, UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import type { MessageVerification, ReceivedMessage, Trust } from '../../messaging/verify.js';

export interface VerifyOptions {
  message?: string;
  package?: string;
  json?: boolean;
}

export function verifyCommand(ctx: CommandContext): Command {
  const cmd = new Command('verify')
    .summary('check one message (or an evidence package) in full')
    .description(
      'Verify one message: signature, certificate chain to the pinned CA, revocation (CRL), sender, body digest and ' +
        "label. Says exactly why it fails and exits 3. With --package DIR, verifies an evidence package made by " +
        'sigil export without the server (the profile’s pinned CA is the trust anchor); the body is not needed.',
    )
    .argument('[message]', 'message id (shown by sigil read)')
    .option('--package <dir>', 'verify an evidence package written by sigil export instead')
    .option('--json', 'print the verdict as JSON')
    .action(async (message: string | undefined, opts: VerifyOptions, c: Command) => run({ ...opts, message }, runtimeFor(ctx, c)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted; not needed with --package)']])],
    examples: ['sigil verify q3Jd0yP1xVfKX2aNw8e9Lg', 'sigil verify --package ./evidence-q3Jd0yP1 --json'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

async function readPackageFile(dir: string, name: string): Promise<Buffer> {
  try {
    return await readFile(join(dir, name));
  } catch (cause) {
    throw new InputFileError(join(dir, name), 'a readable file of an evidence package', { cause });
  }
}

/** Trust and message from an evidence package; the CRL must be signed by a CA chaining to the pin. */
async function fromPackage(rt: Runtime, dir: string): Promise<{ m: ReceivedMessage; trust: Trust }> {
  const { Certificate, Crl } = await import('../../../pki/index.js');
  const { checkCrl } = await import('../../crl-check.js');
  const { parseHeader } = await import('../../messaging/header.js');
  const headerText = (await readPackageFile(dir, 'header.json')).toString('utf8');
  const signature = await readPackageFile(dir, 'signature.der');
  const chainPem = (await readPackageFile(dir, 'chain.pem')).toString('utf8');
  const crlPem = (await readPackageFile(dir, 'crl.pem')).toString('utf8');
  let meta: { receivedAt?: unknown } = {};
  try {
    meta = JSON.parse((await readPackageFile(dir, 'message.json')).toString('utf8')) as typeof meta;
  } catch {
    // receivedAt is optional: without it the chain is judged at the signing time
  }
  const pinned = await rt.profile.read('ca');
  await checkCrl(crlPem, pinned, chainPem, rt.io.now());
  // id and conversation are taken from the signed header itself: nothing else to compare with.
  const parsed = parseHeader(headerText);
  return {
    m: {
      id: parsed.ok ? parsed.header.id : '',
      conversation: parsed.ok ? parsed.header.conversation : '',
      header: headerText,
      signature: signature.toString('base64'),
      body: null,
      receivedAt: typeof meta.receivedAt === 'string' ? meta.receivedAt : '',
    },
    trust: {
      anchors: Certificate.fromPemBundle(pinned),
      intermediates: Certificate.fromPemBundle(chainPem).filter((c) => c.isCA),
      crls: [Crl.fromPem(crlPem)],
    },
  };
}

export async function run(opts: VerifyOptions, rt: Runtime): Promise<void> {
  if (Boolean(opts.message) === Boolean(opts.package)) throw new UsageError('give either a message id or --package DIR, not both or neither');
  const { verifyMessage } = await import('../../messaging/verify.js');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  let v: MessageVerification;
  let id: string;
  if (opts.package) {
    const { m, trust } = await fromPackage(rt, opts.package);
    v = await verifyMessage(m, trust);
    id = m.id || opts.package;
  } else {
    if (!/^[A-Za-z0-9_-]{22}$/.test(opts.message as string)) throw new UsageError('<message>: expected a 22-character message id');
    const { MessagingSession } = await import('../../messaging/session.js');
    const { MessageSchema } = await import('../../messaging/api.js');
    const ms = await MessagingSession.open(rt);
    const m = await ms.http.get(`/v1/messages/${encodeURIComponent(opts.message as string)}`, MessageSchema);
    v = await ms.verify(m);
    id = m.id;
  }
  printVerdict(rt, id, v);
  if (!v.ok) throw new MessageUnverifiedError(`message ${id} failed verification: ${v.reason}: ${v.detail}`);
}

function printVerdict(rt: Runtime, id: string, v: MessageVerification): void {
  if (rt.json) {
    if (!v.ok) return rt.out.json({ id, verified: false, reason: v.reason, detail: v.detail });
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
      chain: v.chain.map((c) => c.subjectString),
      revokedLater: v.revokedLater ? { at: v.revokedLater.at.toISOString(), reason: v.revokedLater.reason } : null,
    });
  }
  if (!v.ok) {
    rt.out.line(`!! VERIFICATION FAILED: ${v.reason}: ${v.detail}`);
    return;
  }
  rt.out.fields([
    ['message', id],
    ['verdict', v.revokedLater ? `valid, signed before revocation (revoked ${v.revokedLater.at.toISOString()}, ${v.revokedLater.reason})` : 'valid'],
    ['signed by', `${v.signer} (certificate ${v.signerCert.serialNumber}, clearance ${v.signerCert.clearance ?? 'none'})`],
    ['label', v.header.label.replace('-', ' ').toUpperCase()],
    ['sent', v.header.sentAt],
    ['body digest', v.bodyChecked ? 'matches the signed SHA-384' : 'not checked (no body given)'],
    ['chain', v.chain.map((c) => c.subjectString).join(' <- ')],
  ]);
}
