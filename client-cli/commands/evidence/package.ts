/**
 * Offline verification of an evidence package written by `sigil export`, and what it can prove.
 *
 * What is authenticated in a package: header.json and signature.der (the signer's key), chain.pem
 * and crl.pem (the CA, as far as they chain to the profile's pinned root). What is not: message.json
 * (id, seq, receivedAt as the appliance filed it) and README.txt. Nothing the appliance signed binds
 * this message to a time either: its audit entry (`message.accepted`) names the message only by
 * keyed hashes that need the appliance's key to recompute, and the send receipt is not signed.
 *
 * Revocation of the whole chain (RFC 5280 §6.3): the signer's certificate against the issuing CA's
 * CRL (crl.pem), the issuing CA against the root's CRL (root-crl.pem, signed by the pinned root;
 * packages from appliances without a root CRL lack it, and then the issuing CA is not checked,
 * which the answer says). CRLs given with --crl are sorted by issuer: the root's apply to the
 * issuing CA, the issuing CA's to the signer; per issuer the highest CRL number wins.
 *
 * So the only times an offline check may use are the verifier's own clock and the CA-signed CRLs.
 * The chain's validity dates and revocation are judged NOW: a certificate revoked (or expired) now
 * fails, however early message.json's receivedAt or the signature's signingTime claim the message
 * was made — both can be written by whoever holds a stolen key. `sigil verify <id>` against the
 * appliance judges it at the receipt time the appliance recorded, which is where a message signed
 * before its signer's revocation shows as such.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Certificate, Crl, type RevokedEntry } from '../../../pki/index.js';
import { checkCrl } from '../../crl-check.js';
import { InputFileError, NotTrustedError } from '../../errors.js';
import { parseHeader } from '../../messaging/header.js';
import { applyRootCrl, checkRootCrl, issuingCas, parseCrl, pinnedRoots } from '../../messaging/root-crl.js';
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
  /**
   * The revocation check of the issuing CA: the root CRL it was judged with (the newest of
   * root-crl.pem and the --crl files the root signed), or `checked: false` with the reason.
   */
  issuingCa: IssuingCaRevocation;
}

/** How the issuing CA's revocation was judged (by the root's CRL, RFC 5280 §6.3). */
export type IssuingCaRevocation =
  | { checked: true; rootCrlNumber: string; rootCrlFrom: string; nextUpdate: Date; stale: boolean; revoked?: RevokedEntry & { subject: string } }
  | { checked: false; why: string };

/** The note line when the package has no root CRL (and none was given with --crl). */
export const NO_ROOT_CRL_NOTE =
  "the issuing CA's revocation was not checked: no root CRL in the package (its appliance had none when exported); give one with --crl FILE (sigil crl fetch --root --out FILE)";

/** What {@link verifyPackage} trusts and when. */
export interface VerifyPackageOptions {
  /** The profile's pinned CA certificate(s), PEM: the only trust anchor. */
  pinnedPem: string;
  /** The verifier's clock. */
  now: Date;
  /**
   * More CRLs (PEM), e.g. current ones from `sigil crl fetch` / `sigil crl fetch --root`; each
   * applies by its issuer (the root's to the issuing CA, the issuing CA's to the signer), and per
   * issuer the highest CRL number wins.
   */
  crlPems?: string[];
  /** Names of `crlPems` for messages (the files given), same order. Default `--crl #n`. */
  crlNames?: string[];
  /**
   * The root CRL the profile kept from the appliance, already checked by a pinned root
   * (messaging/kept-root-crl.ts, readKept): one more candidate, for a package made before the
   * issuing CA's revocation carries the older root CRL, and the newer one this workstation has
   * seen still judges it.
   */
  keptRootCrl?: Crl;
}

/** root-crl.pem when the package has one; undefined when it has not (older appliances). */
async function readOptionalPackageFile(dir: string, name: string): Promise<Buffer | undefined> {
  try {
    return await readFile(join(dir, name));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException)?.code === 'ENOENT') return undefined;
    throw new InputFileError(join(dir, name), 'a readable file of an evidence package', { cause });
  }
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
 * @throws NotTrustedError when a CRL is not signed by a CA that chains to the pinned root, when
 *   root-crl.pem is not signed by the pinned root, or when crl.pem is the root's CRL
 */
export async function verifyPackage(dir: string, opts: VerifyPackageOptions): Promise<PackageVerification> {
  const headerText = (await readPackageFile(dir, 'header.json')).toString('utf8');
  const signature = await readPackageFile(dir, 'signature.der');
  const chainPem = (await readPackageFile(dir, 'chain.pem')).toString('utf8');
  const crlPem = (await readPackageFile(dir, 'crl.pem')).toString('utf8');
  const rootCrlFile = await readOptionalPackageFile(dir, 'root-crl.pem');
  const roots = await pinnedRoots(opts.pinnedPem);
  const isRootCrl = (crl: Crl) => roots.some((r) => crl.issuerNameDer.equals(r.subjectNameDer));

  // The issuing CA's CRLs judge the signer (pki, below); the root's judge the issuing CA (here).
  await checkCrl(crlPem, opts.pinnedPem, chainPem, opts.now);
  const leafCrl = parseCrl(crlPem, 'crl.pem');
  if (isRootCrl(leafCrl)) throw new NotTrustedError('crl.pem', "it is the root's CRL; crl.pem must be the issuing CA's (the root's belongs in root-crl.pem)");
  const leafCrls: Crl[] = [leafCrl];
  const rootCrls: { crl: Crl; from: string }[] = [];
  if (rootCrlFile) rootCrls.push({ crl: await checkRootCrl(rootCrlFile.toString('utf8'), 'root-crl.pem', roots), from: 'root-crl.pem' });
  for (const [i, pem] of (opts.crlPems ?? []).entries()) {
    const from = opts.crlNames?.[i] ?? `--crl #${i + 1}`;
    await checkCrl(pem, opts.pinnedPem, chainPem, opts.now);
    const crl = parseCrl(pem, from);
    if (isRootCrl(crl)) rootCrls.push({ crl: await checkRootCrl(pem, from, roots), from });
    else leafCrls.push(crl);
  }
  // Last, so that at an equal number the package's or a given file's is named.
  if (opts.keptRootCrl) rootCrls.push({ crl: opts.keptRootCrl, from: 'this profile' });

  // id and conversation are taken from the signed header itself: nothing else to compare with.
  const parsed = parseHeader(headerText);
  const id = parsed.ok ? parsed.header.id : dir;
  const claimed = await claimedReceivedAt(dir);
  let v = await verifyMessage(
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
      crls: leafCrls,
    },
    { at: opts.now },
  );
  let note = v.ok ? undefined : noteFor(v, id);

  // The issuing CA against the newest root CRL, judged like the signer against its CRL (pki
  // validate.ts): past its nextUpdate is crl-stale, listed with a revocationDate <= now is revoked.
  let issuingCa: IssuingCaRevocation;
  const newest = rootCrls.reduce<(typeof rootCrls)[number] | undefined>((a, b) => (!a || b.crl.crlNumber > a.crl.crlNumber ? b : a), undefined);
  if (!newest) {
    issuingCa = { checked: false, why: 'no root CRL in the package' };
  } else {
    const { crl, from } = newest;
    const cas = await issuingCas(v, [...Certificate.fromPemBundle(chainPem), ...Certificate.fromPemBundle(opts.pinnedPem)], roots);
    const r = applyRootCrl(v, crl, opts.now, cas, from);
    issuingCa = { checked: true, rootCrlNumber: crl.crlNumber.toString(), rootCrlFrom: from, nextUpdate: crl.nextUpdate, stale: r.stale, ...(r.revoked ? { revoked: r.revoked } : {}) };
    v = r.v;
    if (r.changed === 'crl-stale') {
      note = "the package's root CRL is past its next update, so it cannot show whether the issuing CA is revoked now; give a current one with --crl FILE (sigil crl fetch --root --out FILE)";
    } else if (r.changed === 'revoked') {
      note = `a revoked issuing CA vouches for no certificate it issued, whatever time the message claims; sigil verify ${id} against the appliance judges it at the receipt time the appliance recorded`;
    }
  }
  return { id, v, checkedAt: opts.now, ...(claimed !== undefined ? { claimedReceivedAt: claimed } : {}), ...(note ? { note } : {}), issuingCa };
}
