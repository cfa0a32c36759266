/**
 * `sigil export <message> --out DIR`: an evidence package an auditor can check with OpenSSL alone,
 * without reading the body: the header exactly as signed (it holds the body's SHA-384, not the
 * body), the detached signature in DER, the signer's chain, the CRLs (the issuing CA's, and the
 * root's when the appliance has one), one PEM with CA certificates and CRLs for `-CAfile`, and a README with the exact `openssl cms -verify` command.
 */
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface ExportOptions {
  message: string;
  out: string;
  force?: boolean;
  json?: boolean;
}

/**
 * The command in the README, run from inside the package folder: `-crl_check_all` (revocation of
 * every certificate of the chain, the issuing CA included) when the package has the root's CRL.
 */
export const OPENSSL_VERIFY = 'openssl cms -verify -binary -inform DER -in signature.der -content header.json -CAfile ca-and-crl.pem -crl_check_all -purpose any -out /dev/null';
/** The fallback for an appliance without a root CRL: only the signer's certificate is checked for revocation. */
export const OPENSSL_VERIFY_LEAF_ONLY = OPENSSL_VERIFY.replace('-crl_check_all', '-crl_check');

export function exportCommand(ctx: CommandContext): Command {
  const cmd = new Command('export')
    .summary('write an evidence package for one message (OpenSSL-verifiable)')
    .description(
      'Write an evidence package for a message into DIR: header.json (the exact signed bytes), signature.der, ' +
        'chain.pem, crl.pem, root-crl.pem (when the appliance has one), ca-and-crl.pem, message.json and README.txt with the openssl command that verifies it. ' +
        "The body is not included: the header carries its SHA-384. The message is verified before it is exported.",
    )
    .argument('<message>', 'message id')
    .requiredOption('--out <dir>', 'folder to write (created; must be empty unless --force)')
    .option('--force', 'write into a folder that already has files')
    .option('--json', 'print {dir, files, command} as JSON')
    .action(action1(ctx, 'message', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      'sigil export q3Jd0yP1xVfKX2aNw8e9Lg --out evidence-q3Jd',
      `cd evidence-q3Jd && ${OPENSSL_VERIFY}`,
      `cd evidence-q3Jd && ${OPENSSL_VERIFY_LEAF_ONLY}   # appliance without a root CRL`,
    ],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

function readme(p: { command: string; rootCrl: boolean; id: string; signer: string; serial: string; label: string; sentAt: string; receivedAt: string; rootSubject: string; rootFingerprint: string; revokedLater?: string }): string {
  return `Sigil evidence package for message ${p.id}

Signed by:   ${p.signer} (certificate serial ${p.serial})
Label:       ${p.label}
Sent at:     ${p.sentAt} (signed, the signer's own claim)
Received:    ${p.receivedAt} (the appliance's record, copied into message.json; NOT signed)
${p.revokedLater ? `NOTE:        the signer's certificate was revoked AFTER this message was received (${p.revokedLater}).\n             Offline, this package is refused: OpenSSL's -crl_check and sigil verify --package\n             both judge revocation now, since nothing in the package proves when the message\n             reached the appliance. sigil verify ${p.id} against the appliance judges it at\n             the receipt time the appliance recorded and reports it as signed before revocation.\n` : ''}
Files
  header.json     the message header exactly as signed (RFC 8785 canonical JSON, UTF-8).
                  It contains the SHA-384 and size of the body, NOT the body: this package
                  proves who signed what without revealing the message text.
  signature.der   detached CMS SignedData (RFC 5652) over header.json, with the signer's
                  certificate and an ESS security label (RFC 2634) equal to the header's label.
  chain.pem       the signer's certificate, the issuing CA and the root CA.
  crl.pem         the certificate revocation list of the issuing CA when exported.
${p.rootCrl ? '  root-crl.pem    the root CA\'s revocation list (it covers the issuing CA).\n' : ''}  ca-and-crl.pem  the CA certificates and the CRL${p.rootCrl ? 's' : ''} in one file, for openssl -CAfile.
  message.json    where the appliance filed it (id, conversation, seq, receivedAt); NOT signed,
                  so information only: no verifier relies on it.

Verify (from this folder):

  ${p.command}

${
  p.rootCrl
    ? 'With -crl_check_all, OpenSSL checks revocation for every certificate of the chain: the signer\'s\nagainst crl.pem, the issuing CA\'s against root-crl.pem.'
    : 'NOTE: the appliance had no root CRL (it was initialised before root CRLs; its officer signs one\nwith sigil-server sign-root-crl), so only the signer\'s certificate is checked for revocation\n(-crl_check); -crl_check_all would fail with "unable to get certificate CRL" for the issuing CA.'
}

It prints "CMS Verification successful" and exits 0. Any change to one byte of header.json or
signature.der makes it fail. Check the root first: it must be the root you trust,

  root subject:      ${p.rootSubject}
  SHA-256 (DER):     ${p.rootFingerprint}
  openssl x509 -in chain.pem -noout -subject -fingerprint -sha256   (the last certificate)

To check the body against the header, compute its digest and compare with body.sha384:
  openssl dgst -sha384 -binary BODY_FILE | openssl base64 -A

With a Sigil profile that pins the same root: sigil verify --package .

What this package proves, offline
  - that the holder of the signer's private key signed header.json (and so the body whose
    SHA-384 it carries), with the label shown, and that the certificate chains to the root above;
  - that the certificate is valid and not revoked NOW, by the verifier's clock and the CRL given
    (the package's own, or a current one: sigil crl fetch --out FILE, then --crl FILE).
What it does not prove
  - WHEN the message was signed or received: signingTime and sentAt are written by the signer,
    and message.json by anyone who holds the files; nothing here is signed by the appliance that
    binds this message to a time. A certificate revoked or expired now therefore fails offline,
    even for a message sent long before. Only the appliance can vouch for the receipt time:
    sigil verify ${p.id} (online) judges the chain at the receipt time it recorded.
`;
}

export async function run(opts: ExportOptions, rt: Runtime): Promise<void> {
  if (!/^[A-Za-z0-9_-]{22}$/.test(opts.message)) throw new UsageError('<message>: expected a 22-character message id');
  const { readdir } = await import('node:fs/promises');
  const { MessagingSession } = await import('../../messaging/session.js');
  const { MessageSchema } = await import('../../messaging/api.js');
  const { MessageUnverifiedError, OutputExistsError } = await import('../../messaging/errors.js');
  const { makeOwnFolder, NewFiles } = await import('../../output-file.js');
  const dir = resolve(opts.out);
  // A folder someone else owns or may write into is refused: they could plant a link at one of
  // the names below while the message is fetched and verified.
  await makeOwnFolder(dir);
  if (!opts.force && (await readdir(dir)).length > 0) throw new OutputExistsError(dir);
  const ms = await MessagingSession.open(rt);
  const m = await ms.http.get(`/v1/messages/${encodeURIComponent(opts.message)}`, MessageSchema);
  const v = await ms.verify(m);
  if (!v.ok) throw new MessageUnverifiedError(`message ${m.id} failed verification: ${v.reason}: ${v.detail}; not exported`);
  // The CRL the verification just used (fetched once this run, its signature checked).
  const crlPem = (await ms.trust()).crls.map((c) => c.pem.trimEnd() + '\n').join('');
  // chain: signer, issuing CA(s), root; CAs for -CAfile: every CA of the validated chain.
  const chain = v.chain;
  const cas = chain.slice(1);
  const root = chain[chain.length - 1]!;
  // The root's CRL (covers the issuing CA) the verification just judged it by, when the appliance
  // has one: fetched once this run, its signature checked by the pinned root.
  const rootCrl = await ms.rootCrl();
  const rootCrlPem = rootCrl && rootCrl.pem.trimEnd() + '\n';
  const command = rootCrlPem ? OPENSSL_VERIFY : OPENSSL_VERIFY_LEAF_ONLY;
  if (rootCrl && rootCrl.nextUpdate.getTime() <= rt.io.now().getTime()) {
    rt.out.note(`note: the appliance's root CRL passed its nextUpdate (${rootCrl.nextUpdate.toISOString()}): openssl -crl_check_all refuses the package until its officer holds a root key ceremony (sigil-server sign-root-crl)`);
  }
  const files: Record<string, string | Uint8Array> = {
    'header.json': m.header,
    'signature.der': Buffer.from(m.signature, 'base64'),
    'chain.pem': chain.map((c) => c.pem.trimEnd() + '\n').join(''),
    'crl.pem': crlPem,
    ...(rootCrlPem ? { 'root-crl.pem': rootCrlPem } : {}),
    'ca-and-crl.pem': cas.map((c) => c.pem.trimEnd() + '\n').join('') + crlPem + (rootCrlPem ?? ''),
    'message.json': JSON.stringify({ id: m.id, seq: m.seq, conversation: m.conversation, sender: m.sender, label: m.label, receivedAt: m.receivedAt }, null, 2) + '\n',
    'README.txt': readme({
      command,
      rootCrl: rootCrlPem !== undefined,
      id: m.id,
      signer: v.signer,
      serial: v.signerCert.serialNumber,
      label: v.header.label,
      sentAt: v.header.sentAt,
      receivedAt: m.receivedAt,
      rootSubject: root.subjectString,
      rootFingerprint: root.fingerprint,
      ...(v.revokedLater ? { revokedLater: `${v.revokedLater.at.toISOString()}, ${v.revokedLater.reason}` } : {}),
    }),
  };
  // Each file new (O_EXCL, never through a link); --force removes what is at the name first. Yours
  // alone (0600) even in a folder others may read: the signed header names the attachments and
  // any meeting, which the exporter hands over on purpose, not by leaving them readable.
  // A failure part-way (a full disk) takes back the files written so far: a package cut short
  // must not be left to pass for a whole one, nor one file in it half written.
  const written = new NewFiles();
  try {
    for (const [name, content] of Object.entries(files)) await written.write(join(dir, name), content, { mode: 0o600, replace: opts.force });
  } catch (err) {
    await written.removeAll();
    throw err;
  }
  const result = { dir, message: m.id, files: Object.keys(files), command, rootCrl: rootCrlPem !== undefined };
  if (!rootCrlPem) rt.out.note('note: the appliance has no root CRL: the README\'s command uses -crl_check (signer only), not -crl_check_all');
  if (rt.json) return rt.out.json(result);
  rt.out.fields([
    ['exported', m.id],
    ['folder', dir],
    ['files', Object.keys(files).join(', ')],
    ['verify with', `cd ${dir} && ${command}`],
  ]);
}
