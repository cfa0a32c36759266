/**
 * The newest root CRL this profile has accepted (`root-crl.pem` in the profile), so that no later
 * answer can make the CLI forget it.
 *
 * The root CRL is the one thing that can revoke the issuing CA, and it matters most when the
 * issuing CA's key is stolen. Whoever holds that key can make a TLS certificate that chains to the
 * pinned root and play the appliance: answer 404 for the root CRL, or serve an older one that does
 * not list the issuing CA yet. A root CRL's nextUpdate is up to a year away, so freshness alone
 * does not catch that. So the CLI keeps the root CRL with the highest CRL number it has accepted
 * (signed by a pinned root; RFC 5280 §5.2.3: a CRL number only grows) and judges by the newer of
 * its own and the served one, saying on stderr when it used its own — as the auditor's saved
 * checkpoint refuses a rollback of the trail (audit/checkpoint.ts).
 *
 * The file holds nothing secret (a CRL is public) and goes through the profile's whole-file write,
 * so a crash never leaves half of one; `sigil setup` removes it when the pinned CA changes.
 */
import type { Certificate, Crl } from '../../pki/index.js';
import { NotTrustedError } from '../errors.js';
import type { HttpClient } from '../http.js';
import type { Profile } from '../profile.js';
import { checkRootCrl, fetchRootCrl, pinnedRoots, type ServedRootCrl } from './root-crl.js';

/** Where the kept root CRL lives: the profile's `root-crl.pem` (session.ts), a map in tests. */
export interface RootCrlStore {
  /** The kept PEM, or undefined when none was kept. */
  read(): Promise<string | undefined>;
  write(pem: string): Promise<void>;
  /** Where it is, for messages. */
  readonly where: string;
}

/** The profile's `root-crl.pem` as a {@link RootCrlStore}. */
export function profileRootCrlStore(profile: Profile): RootCrlStore {
  return { where: 'this profile', read: () => profile.readOptional('rootCrl'), write: (pem) => profile.write('rootCrl', pem) };
}

/** The root CRL a session judges the issuing CA by. */
export type HeldRootCrl =
  | {
      crl: Crl;
      /** For the verdict: `the appliance`, or `this profile` when the kept one was newer. */
      from: string;
      /** Lines for stderr: the kept one used in place of what was served, or it could not be kept. */
      warnings: string[];
    }
  | { crl?: undefined; missing: { why: string; note: string }; warnings: string[] };

/**
 * The served root CRL (`GET /v1/crl/root`) against the kept one ({@link weighRootCrl}).
 * @throws NotTrustedError when the appliance serves a root CRL no pinned root signed
 */
export async function holdRootCrl(http: HttpClient, pinnedPem: string, store: RootCrlStore): Promise<HeldRootCrl> {
  const roots = await pinnedRoots(pinnedPem);
  const [served, kept] = await Promise.all([fetchRootCrl(http, roots), readKept(store, roots)]);
  return weighRootCrl(served, kept, store);
}

/**
 * The kept root CRL in `store`, if a pinned root (`roots`) signed it; one that is not (damaged, or
 * of another pin) is ignored, and `warnings` says so.
 */
export async function readKept(store: RootCrlStore, roots: Certificate[]): Promise<{ crl?: Crl; warnings: string[] }> {
  const pem = await store.read();
  if (pem === undefined) return { warnings: [] };
  try {
    return { crl: await checkRootCrl(pem, `kept in ${store.where}`, roots), warnings: [] };
  } catch (err) {
    if (!(err instanceof NotTrustedError)) throw err;
    return { warnings: [`${err.message}; it is ignored, and replaced by the next root CRL the appliance serves`] };
  }
}

/**
 * The higher CRL number of `served` and `kept` wins; a served one newer than the kept is kept from
 * now on (`sigil crl fetch --root` weighs what it fetched the same way).
 */
export async function weighRootCrl(served: ServedRootCrl, kept: { crl?: Crl; warnings: string[] }, store: RootCrlStore): Promise<HeldRootCrl> {
  const warnings = [...kept.warnings];
  const own = kept.crl;
  if (served.crl && (!own || served.crl.crlNumber >= own.crlNumber)) {
    if (!own || served.crl.crlNumber > own.crlNumber) {
      // Not keeping it weakens only later runs against a rollback; this one has the newest.
      await store.write(served.pem).catch((err: unknown) => {
        warnings.push(`could not keep root CRL #${served.crl.crlNumber} in ${store.where} (${err instanceof Error ? err.message : String(err)}); a later run cannot tell if an older one is served`);
      });
    }
    return { crl: served.crl, from: 'the appliance', warnings };
  }
  if (own) {
    const answer = served.crl
      ? `the appliance served root CRL #${served.crl.crlNumber}, older than #${own.crlNumber}`
      : `${served.missing.why} (GET /v1/crl/root), yet root CRL #${own.crlNumber} was seen before`;
    warnings.push(
      `${answer}: an appliance restored from an old backup, or one that is not the appliance; ` +
        `the issuing CA is judged by root CRL #${own.crlNumber}, kept in ${store.where} by an earlier run`,
    );
    return { crl: own, from: 'this profile', warnings };
  }
  return { missing: (served as { missing: { why: string; note: string } }).missing, warnings };
}
