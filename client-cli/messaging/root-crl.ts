/**
 * The issuing CA against the root's CRL for every message the CLI verifies online (RFC 5280 §6.3;
 * MessagingSession.verify, for read, watch, download, export and `sigil verify <id>`): the root
 * CRL is fetched from the appliance (`GET /v1/crl/root`, memory only) and trusted only with its
 * signature checked by a self-signed root of the pin. The issuing CA is judged by the rule the
 * online path judges the signer by (pki validate.ts at the receipt time the appliance reports over
 * TLS, verify.ts): listed with a revocationDate <= that time is `revoked`; listed later is
 * "received before revocation" (`revokedLater`, the verdict stays valid); a root CRL whose
 * nextUpdate is before that time is `crl-stale`; one stale only now is a stderr warning, as for
 * the issuing CA's CRL (session.ts). The session judges with the newer of the served root CRL and
 * the one its profile kept from earlier runs (kept-root-crl.ts); with neither (404) the issuing CA
 * is left unchecked, which the answer says. The offline twin is commands/evidence/package.ts, which
 * judges with the same {@link applyRootCrl} at now.
 */
import { Certificate, Crl, type RevokedEntry } from '../../pki/index.js';
import { CrlSchema } from '../api.js';
import { NotTrustedError, ServerError } from '../errors.js';
import type { HttpClient } from '../http.js';
import type { IssuingCaRevocation } from '../commands/evidence/package.js';
import type { HeldRootCrl } from './kept-root-crl.js';
import type { MessageVerification, ReceivedMessage } from './verify.js';

/**
 * Online: the package shape, plus the issuing CA revoked after the receipt time, and when it was
 * not checked, the note line that says why (`sigil verify` prints it on stderr).
 */
export type OnlineIssuingCaRevocation = IssuingCaRevocation & { revokedLater?: RevokedEntry & { subject: string }; note?: string };

/** The time the online check judges revocation at: the appliance's receipt time (verify.ts), else now. */
export function judgedAt(m: ReceivedMessage, now: Date): Date {
  const receivedAt = new Date(m.receivedAt);
  return Number.isNaN(receivedAt.getTime()) ? now : receivedAt;
}

/** What the appliance answered for its root CRL: the CRL and its PEM, or why there is none. */
export type ServedRootCrl = { crl: Crl; pem: string } | { crl?: undefined; missing: { why: string; note: string } };

/**
 * `GET /v1/crl/root` with its signature checked by a pinned root (`roots`). A 404 is no root CRL:
 * `NOT_FOUND` (none signed yet) or `ROOT_CRL_UNUSABLE` (its file on the appliance is damaged), each
 * with its own words. Only kept-root-crl.ts calls it: the session judges with the newer of this and
 * the profile's.
 * @throws NotTrustedError when no pinned self-signed root issued it or its signature does not verify
 */
export async function fetchRootCrl(http: HttpClient, roots: Certificate[]): Promise<ServedRootCrl> {
  let served: { crl: string };
  try {
    served = await http.get('/v1/crl/root', CrlSchema);
  } catch (err) {
    if (err instanceof ServerError && err.status === 404) return { missing: missingRootCrl(err) };
    throw err;
  }
  return { crl: await checkRootCrl(served.crl, 'from the appliance', roots), pem: served.crl };
}

/** The verdict's `why` and the note line for a 404 from `GET /v1/crl/root`. */
function missingRootCrl(err: ServerError): { why: string; note: string } {
  if (err.code === 'ROOT_CRL_UNUSABLE') {
    const why = "the appliance's root CRL is unusable";
    return { why, note: `the issuing CA's revocation was not checked: ${why} (GET /v1/crl/root: ${err.code}: ${err.message})` };
  }
  const why = 'the appliance has no root CRL';
  return { why, note: `the issuing CA's revocation was not checked: ${why} (GET /v1/crl/root: not found); its officer signs one with sigil-server sign-root-crl` };
}

/** The pinned self-signed roots: only they may sign a root CRL. */
export async function pinnedRoots(pinnedPem: string): Promise<Certificate[]> {
  const roots: Certificate[] = [];
  for (const c of Certificate.fromPemBundle(pinnedPem)) if (c.isSelfIssued && (await c.isIssuedBy(c))) roots.push(c);
  return roots;
}

/** A CRL from `from`, parsed. @throws NotTrustedError when it is not one */
export function parseCrl(pem: string, from: string): Crl {
  try {
    return Crl.fromPem(pem);
  } catch (cause) {
    throw new NotTrustedError(from, 'not a PEM X.509 CRL', { cause });
  }
}

/**
 * The root CRL `pem` (from `from`), its signature checked with the pinned root that issued it.
 * @throws NotTrustedError when no pinned root is its issuer or its signature does not verify
 */
export async function checkRootCrl(pem: string, from: string, roots: Certificate[]): Promise<Crl> {
  const crl = parseCrl(pem, from);
  const root = roots.find((r) => crl.issuerNameDer.equals(r.subjectNameDer));
  const rootNames = roots.map((r) => r.subjectString).join(', ') || '(no self-signed root pinned)';
  if (!root) throw new NotTrustedError(`the root CRL ${from}`, `it is issued by ${crl.issuerString}, not by the pinned root ${rootNames}`);
  const sig = await crl.verifySignature(root);
  if (!sig.ok) throw new NotTrustedError(`the root CRL ${from}`, `its signature does not verify with the pinned root ${root.subjectString}: ${sig.detail}`);
  return crl;
}

/**
 * The issuing CA(s) a root CRL judges: on success those of the chain the signature was verified
 * with (a pinned issuing CA ends it), else every CA among `candidates` issued by one of `roots`.
 */
export async function issuingCas(v: MessageVerification, candidates: Certificate[], roots: Certificate[]): Promise<Certificate[]> {
  const pool = v.ok ? v.chain.slice(1) : candidates;
  const out: Certificate[] = [];
  for (const c of pool) {
    if (!c.isCA || c.isSelfIssued || out.some((o) => o.fingerprint === c.fingerprint)) continue;
    for (const r of roots) {
      if (await c.isIssuedBy(r)) {
        out.push(c);
        break;
      }
    }
  }
  return out;
}


/**
 * Judges the issuing CA(s) `cas` with `rootCrl` at `at` and returns `v` changed as pki changes
 * it for the signer (validate.ts): a stale root CRL gives crl-stale to an otherwise valid message;
 * a revoked issuing CA outranks a revoked or stale signer check; any other failure of the message
 * stays. `changed` says which of the two replaced `v`. Shared by the online check
 * ({@link judgeIssuingCa}) and the package's (commands/evidence/package.ts).
 * @param from where the root CRL came from, for the detail
 * @param revokedSuffix appended to the revoked detail
 */
export function applyRootCrl(
  v: MessageVerification,
  rootCrl: Crl,
  at: Date,
  cas: Certificate[],
  from: string,
  revokedSuffix = '',
): {
  v: MessageVerification;
  changed?: 'crl-stale' | 'revoked';
  stale: boolean;
  revoked?: RevokedEntry & { subject: string };
  revokedLater?: RevokedEntry & { subject: string };
} {
  const stale = rootCrl.nextUpdate < at;
  let revoked: (RevokedEntry & { subject: string }) | undefined;
  let revokedLater: (RevokedEntry & { subject: string }) | undefined;
  for (const ca of cas) {
    const entry = rootCrl.find(ca.serialNumber);
    if (!entry) continue;
    if (entry.revocationDate <= at) {
      revoked = { ...entry, subject: ca.subjectString };
      break;
    }
    revokedLater ??= { ...entry, subject: ca.subjectString };
  }
  const found = { stale, ...(revoked ? { revoked } : {}), ...(!revoked && revokedLater ? { revokedLater } : {}) };
  const header = v.header;
  const rootDetail = `root CRL of ${rootCrl.issuerString} (number ${rootCrl.crlNumber}, ${from})`;
  if (stale) {
    if (v.ok) {
      const detail = `newest ${rootDetail} was due for update ${rootCrl.nextUpdate.toISOString()}, checked at ${at.toISOString()}`;
      return { v: { ok: false, reason: 'crl-stale', detail, ...(header ? { header } : {}) }, changed: 'crl-stale', ...found };
    }
  } else if (revoked && (v.ok || v.reason === 'revoked' || v.reason === 'crl-stale')) {
    const detail = `the issuing CA ${revoked.subject} (serial ${revoked.serialNumber}) is revoked by the ${rootDetail}: revoked ${revoked.revocationDate.toISOString()} (${revoked.reason})${revokedSuffix}`;
    return { v: { ok: false, reason: 'revoked', detail, ...(header ? { header } : {}) }, changed: 'revoked', ...found };
  }
  return { v, ...found };
}

/**
 * Judges the issuing CA of `v` with `rootCrl` at `at` (the receipt time) and returns the verdict,
 * changed as the package path changes it ({@link applyRootCrl}).
 * @param candidates the pinned certificates and the served issuing CA(s)
 */
export async function judgeIssuingCa(
  v: MessageVerification,
  held: HeldRootCrl,
  at: Date,
  candidates: Certificate[],
): Promise<{ v: MessageVerification; issuingCa: OnlineIssuingCaRevocation }> {
  if (!held.crl) return { v, issuingCa: { checked: false, why: held.missing.why, note: held.missing.note } };
  const rootCrl = held.crl;
  const roots = candidates.filter((c) => c.isSelfIssued && c.subjectNameDer.equals(rootCrl.issuerNameDer));
  const from = held.from;
  const r = applyRootCrl(v, rootCrl, at, await issuingCas(v, candidates, roots), from, `, at or before the receipt time ${at.toISOString()}`);
  const issuingCa: OnlineIssuingCaRevocation = {
    checked: true,
    rootCrlNumber: rootCrl.crlNumber.toString(),
    rootCrlFrom: from,
    nextUpdate: rootCrl.nextUpdate,
    stale: r.stale,
    ...(r.revoked ? { revoked: r.revoked } : {}),
    ...(r.revokedLater ? { revokedLater: r.revokedLater } : {}),
  };
  return { v: r.v, issuingCa };
}

/**
 * One `warning: …` line when the root CRL is past its nextUpdate now (as staleCrlWarning for the
 * issuing CA's). `from` is where it came from (kept-root-crl.ts): the appliance, or this profile.
 */
export function staleRootCrlWarning(rootCrl: Crl | undefined, now: Date, from = 'the appliance'): string | undefined {
  if (!rootCrl || !(rootCrl.nextUpdate < now)) return undefined;
  const which = from === 'the appliance' ? `the appliance's root CRL #${rootCrl.crlNumber}` : `the root CRL #${rootCrl.crlNumber} kept in ${from}`;
  return (
    `${which} was due for update at ${rootCrl.nextUpdate.toISOString()} (now ${now.toISOString()}); ` +
    'messages received after that fail verification (crl-stale) until the root key ceremony signs a new one (sigil-server sign-root-crl)'
  );
}
