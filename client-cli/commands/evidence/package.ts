/**
 * Offline verification of an evidence package written by `sigil export`, and what it can prove.
 *
 * What is authenticated in a package: header.json and signature.der (the signer's key), chain.pem
 * and crl.pem (the CA, as far as they chain to the profile's pinned root). What is not: message.json
 * (id, seq, receivedAt as the appliance filed it) and README.txt. Nothing the appliance signed binds
 * this message to a time either: its audit entry (`message.accepted`) names the message only by
 * keyed hashes that need the appliance's key to recompute, and the send receipt is not signed.
 *
 * So the only times an offline check may use are the verifier's own clock and the CA-signed CRL.
 * The chain's validity dates and revocation are judged NOW: a certificate revoked (or expired) now
 * fails, however early message.json's receivedAt or the signature's signingTime claim the message
 * was made — both can be written by whoever holds a stolen key. `sigil verify <id>` against the
 * appliance judges it at the receipt time the appliance recorded, which is where a message signed
 * before its signer's revocation shows as such.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Certificate, Crl } from '../../../pki/index.js';
import { checkCrl } from '../../crl-check.js';
import { InputFileError } from '../../errors.js';
import { parseHeader } from '../../messaging/header.js';
import { verifyMessage, type MessageVerification } from '../../messaging/verify.js';

/** Failure reasons that depend on the time the chain is judged at. */
const TIME_REASONS: ReadonlySet<string> = new Set(['revoked', 'expired', 'not-yet-valid', 'crl-stale']);

export interface PackageVerification {
  /** The message id from the signed header (the folder when the header does not parse). */
  id: string;
  v: MessageVerification;
  /** The verifier's clock: the chain, its dates and the CRL were judged at this time. */
  checkedAt: Date;
  /** receivedAt of message.json, shown as information only: not signed, never used. */
  claimedReceivedAt?: string;
  /** For a failure that a time the package cannot prove would have changed: one line saying so. */
  note?: string;
}

/** What {@link verifyPackage} trusts and when. */
export interface VerifyPackageOptions {
  /** The profile's pinned CA certificate(s), PEM: the only trust anchor. */
  pinnedPem: string;
  /** The verifier's clock. */
  now: Date;
  /** More CRLs (PEM), e.g. a current one from `sigil crl fetch`; the newest of all is used. */
  crlPems?: string[];
}

async function readPackageFile(dir: string, name: string): Promise<Buffer> {
  try {
    return await readFile(join(dir, name));
  } catch (cause) {
    throw new InputFileError(join(dir, name), 'a readable file of an evidence package', { cause });
  }
}

/** message.json's receivedAt when it is there and a string; anything else is no claim. */
async function claimedReceivedAt(dir: string): Promise<string | undefined> {
  try {
    const meta = JSON.parse((await readFile(join(dir, 'message.json'))).toString('utf8')) as { receivedAt?: unknown };
    return typeof meta?.receivedAt === 'string' ? meta.receivedAt : undefined;
  } catch {
    return undefined;
  }
}

/** The line that says why a package cannot settle what `sigil verify <id>` online can. */
function noteFor(v: Extract<MessageVerification, { ok: false }>, id: string): string | undefined {
  if (!TIME_REASONS.has(v.reason)) return undefined;
  const online = `sigil verify ${id} against the appliance judges it at the appliance's recorded receipt time`;
  if (v.reason === 'revoked') return `the package cannot prove the message reached the appliance before the revocation; ${online}`;
  if (v.reason === 'crl-stale') {
    return `the package's CRL is past its next update, so it cannot show whether the certificate is revoked now; give a current one with --crl FILE (sigil crl fetch --out FILE), or run ${online}`;
  }
  return `the package cannot prove the message reached the appliance while the certificate was valid; ${online}`;
}

/**
 * Verifies the evidence package in `dir` offline at `opts.now` (see the file comment for why now).
 * Never throws for a bad message: the verdict says why.
 * @throws InputFileError when a required file (header.json, signature.der, chain.pem, crl.pem) is missing
 * @throws NotTrustedError when a CRL is not signed by a CA that chains to the pinned root
 */
export async function verifyPackage(dir: string, opts: VerifyPackageOptions): Promise<PackageVerification> {
  const headerText = (await readPackageFile(dir, 'header.json')).toString('utf8');
  const signature = await readPackageFile(dir, 'signature.der');
  const chainPem = (await readPackageFile(dir, 'chain.pem')).toString('utf8');
  const crlPems = [(await readPackageFile(dir, 'crl.pem')).toString('utf8'), ...(opts.crlPems ?? [])];
  for (const pem of crlPems) await checkCrl(pem, opts.pinnedPem, chainPem, opts.now);
  // id and conversation are taken from the signed header itself: nothing else to compare with.
  const parsed = parseHeader(headerText);
  const id = parsed.ok ? parsed.header.id : dir;
  const claimed = await claimedReceivedAt(dir);
  const v = await verifyMessage(
    {
      id: parsed.ok ? parsed.header.id : '',
      conversation: parsed.ok ? parsed.header.conversation : '',
      header: headerText,
      signature: signature.toString('base64'),
      body: null,
      // Deliberately not message.json's claim: `at` below is what the chain is judged at.
      receivedAt: '',
    },
    {
      anchors: Certificate.fromPemBundle(opts.pinnedPem),
      intermediates: Certificate.fromPemBundle(chainPem).filter((c) => c.isCA),
      crls: crlPems.map((pem) => Crl.fromPem(pem)),
    },
    { at: opts.now },
  );
  const note = v.ok ? undefined : noteFor(v, id);
  return { id, v, checkedAt: opts.now, ...(claimed !== undefined ? { claimedReceivedAt: claimed } : {}), ...(note ? { note } : {}) };
}
