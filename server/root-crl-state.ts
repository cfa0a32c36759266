/**
 * What `sigil-server status` and `check` say of the root CRL (`ca/root-crl.pem`): its number,
 * dates and days left, whether it revokes the issuing CA, and the warning naming the root key
 * ceremony (sign-root-crl.ts) when it is absent, unreadable, due soon, past, or revoking.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Certificate } from '../pki/index.js';
import { PATHS } from './appliance.js';
import { readRootCrlFile } from './certs/root-crl-file.js';

/** The root CRL is flagged this many days before its nextUpdate (and after it). */
export const ROOT_CRL_WARN_DAYS = 30;

/** What `status` and `check` say of the root CRL. */
export interface RootCrlState {
  number: number;
  thisUpdate: string;
  nextUpdate: string;
  daysLeft: number;
  issuingRevoked: boolean;
  warn: boolean;
}

/**
 * The root CRL in `dataDir` at `at` and the warning it deserves (null when none): absent (an
 * appliance made before root CRLs), unreadable, due within {@link ROOT_CRL_WARN_DAYS} days or past
 * its nextUpdate, or revoking the issuing CA. Each warning names the ceremony command.
 */
export async function rootCrlState(dataDir: string, at: Date): Promise<{ state: RootCrlState | null; warning: string | null }> {
  const cmd = `sigil-server sign-root-crl --data ${dataDir} --root-key ROOT-KEY-FILE`;
  // Held to the root's signature, as the server's watch holds it: a file the root did not sign is
  // what the server ignores, so status must not report what it claims (a revoked issuing CA).
  const root = Certificate.fromPem(await readFile(join(dataDir, PATHS.rootCert), 'utf8'));
  const file = await readRootCrlFile(join(dataDir, PATHS.rootCrl), root);
  if ('missing' in file) {
    return { state: null, warning: `no root CRL (${PATHS.rootCrl}): auditors cannot check the whole chain (openssl -crl_check_all); sign one at a root key ceremony: ${cmd}` };
  }
  if ('invalid' in file) {
    return {
      state: null,
      warning: `${PATHS.rootCrl} ${file.invalid}: auditors' checks of the whole chain fail and the server ignores it; sign a new one at a root key ceremony: ${cmd}`,
    };
  }
  const crl = file.crl;
  const issuing = Certificate.fromPem(await readFile(join(dataDir, PATHS.issuingCert), 'utf8'));
  const daysLeft = Math.floor((crl.nextUpdate.getTime() - at.getTime()) / 86_400_000);
  const issuingRevoked = crl.find(issuing.serialNumber) !== undefined;
  const state: RootCrlState = {
    number: Number(crl.crlNumber),
    thisUpdate: crl.thisUpdate.toISOString(),
    nextUpdate: crl.nextUpdate.toISOString(),
    daysLeft,
    issuingRevoked,
    warn: daysLeft < ROOT_CRL_WARN_DAYS || issuingRevoked,
  };
  let warning: string | null = null;
  if (issuingRevoked) {
    warning =
      `root CRL ${state.number} revokes the issuing CA (${issuing.serialNumber}): every certificate of this appliance fails revocation checks ` +
      'of the whole chain, and the server refuses every request but those for the CA certificates and CRLs';
  } else if (crl.nextUpdate.getTime() <= at.getTime()) {
    warning = `root CRL ${state.number} is stale: nextUpdate ${state.nextUpdate} has passed and openssl -crl_check_all refuses every certificate; hold a root key ceremony now: ${cmd}`;
  } else if (daysLeft < ROOT_CRL_WARN_DAYS) {
    warning = `root CRL ${state.number} reaches nextUpdate in ${daysLeft} days (${state.nextUpdate}); hold a root key ceremony before then: ${cmd}`;
  }
  return { state, warning };
}
