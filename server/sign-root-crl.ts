/**
 * `sigil-server sign-root-crl`: the root key ceremony that re-signs the root CA's CRL
 * (`ca/root-crl.pem`), the CRL that covers the issuing CA and that `openssl verify -crl_check_all`
 * needs for the whole chain. The root key is offline (init wrote it encrypted and printed its
 * passphrase once); the officer who holds it brings it to the appliance for this, at least once a
 * year (the CRL's nextUpdate, 365 days by default, see pki/root-crl.ts `ROOT_CRL_VALIDITY_DAYS`).
 *
 * - The key must be the root certificate's (`ca/root.pem`), else ROOT_KEY_MISMATCH; the
 *   passphrase comes from `--passphrase-file`, else the terminal (no echo), else the first line
 *   of stdin — never from argv.
 * - The CRL number is one above the current root CRL's and above every number the audit log says
 *   was signed (1 for an appliance made before root CRLs). A current file that is not a CRL of
 *   this root is refused (ROOT_CRL_INVALID).
 * - Revocations are permanent (RFC 5280 §3.3): the entries of the current CRL are carried over, and
 *   so is every serial an earlier root CRL listed by the audit log (the file lost, moved aside or
 *   brought back older: a higher-numbered CRL without them would lift them, ca-history.ts).
 *   `--revoke-issuing --yes` adds the issuing CA (keyCompromise) — every certificate it has had,
 *   `ca/issuing.pem`'s and each one a renewal replaced (ca-history.ts): renewal kept the key, so an
 *   older certificate left off would still chain what a stolen key signs; once any of them is
 *   listed (by a CRL signed before this rule), the next ceremony lists the others with its date.
 *   Every certificate of the
 *   appliance then fails `openssl verify -crl_check_all`, and a running server (certs/root-crl-watch.ts)
 *   refuses every request but those for the CA certificates and CRLs and ends every session. For a
 *   drill, use a copy of the data directory.
 * - Holds the data directory's claim (server/ops/data-claim.ts) beside a running server: one
 *   ceremony at a time, none during a restore, repack or rotation (OPS_DATA_IN_USE).
 * - Written atomically (temp file, fsync, rename, fsync of `ca/`), mode 0644 like the other
 *   public files. The server reads the file at each `GET /v1/crl/root`: no restart needed.
 * - Audit: `ca.root-crl.signed` (actor `system`; CRL number, dates, revoked serials with their dates
 *   and reasons, the SPKI fingerprints of the issuing CA's key and of the root key) is appended to the audit log in vault.db before the new file is renamed into
 *   place; the log needs no master key, and SQLite's lock orders it with a running server's
 *   appends. A failure to append leaves the old CRL in place.
 *
 * Opening the root key and reading the passphrase, shared with renew-issuing.ts, are
 * root-key-ceremony.ts's; what `status` and `check` say of the root CRL is root-crl-state.ts's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { Certificate, Crl, createRootCrl, ROOT_CRL_VALIDITY_DAYS, type CryptoKey } from '../pki/index.js';
import { PATHS } from './appliance.js';
import { readRootCrlFile } from './certs/root-crl-file.js';
import { auditedRevocations, issuingSerials, lastAuditedCrlNumber, ROOT_CRL_AUDIT_TYPE, spkiSha256, withIssuingRevoked } from './ca-history.js';
// Where init.ts has always taken it from.
export { ROOT_CRL_AUDIT_TYPE } from './ca-history.js';
import { AuditLog } from './audit/index.js';
// data-claim.js rather than ops/index.js: ops' status and check import root-crl-state.ts, and this
// ceremony needs the claim only (as renew-issuing.ts).
import { claimDataDir } from './ops/data-claim.js';
import type { MainIo } from './main.js';
import { openCeremony, readPassphrase, readRootKeyFile, RootCrlError } from './root-key-ceremony.js';
import { Db, replaceFilesAfter, VAULT_DB_FILE } from './vault/index.js';

/** Longest `--days`: the root CRL must be renewed by a ceremony at least this often. */
export const ROOT_CRL_MAX_DAYS = 366;

/** Options of {@link signRootCrl}. */
export interface SignRootCrlOptions {
  dataDir: string;
  /** The encrypted root key PEM (init's `ca/root-key.p8.pem`, brought back from the safe). */
  rootKeyPem: string;
  passphrase: string;
  /** Validity in days; default {@link ROOT_CRL_VALIDITY_DAYS}, capped at the root's notAfter. */
  days?: number;
  /** Add the issuing CA to the CRL (keyCompromise). */
  revokeIssuing?: boolean;
  now?: () => Date;
}

/** What the ceremony did (`--json`). */
export interface SignRootCrlResult {
  file: string;
  crlNumber: number;
  previousCrlNumber: number | null;
  /** The newest number the audit log records as signed (null: none), which the file may lack. */
  previousAuditedNumber: number | null;
  /** Serials listed because earlier root CRLs (audit log) did, though the file in place does not. */
  carriedOver: string[];
  thisUpdate: string;
  nextUpdate: string;
  revoked: { serialNumber: string; reason: string; revocationDate: string }[];
  issuingRevoked: boolean;
  /** Every serial the issuing CA has had (ca/issuing.pem's and those renewals replaced). */
  issuingSerials: string[];
  auditSeq: number;
}

/**
 * Signs the next root CRL and puts it in place.
 * @throws ApplianceMissingError, RootCrlError, IssuerExpiredError (the root has expired).
 */
export async function signRootCrl(opts: SignRootCrlOptions): Promise<SignRootCrlResult> {
  const { dataDir, now, root, key, fingerprint } = await openCeremony(opts);
  const issuing = Certificate.fromPem(await readFile(join(dataDir, PATHS.issuingCert), 'utf8'));

  // One ceremony at a time, and none while a restore, repack or rotation rewrites vault.db (its
  // audit entry goes there); a running server is no obstacle.
  const claim = await claimDataDir(dataDir, 'sign-root-crl', { besideServer: true, sweep: false });
  try {
    return await signUnderClaim(dataDir, now, root, issuing, key, fingerprint, opts);
  } finally {
    claim.release();
  }
}

async function signUnderClaim(
  dataDir: string,
  now: Date,
  root: Certificate,
  issuing: Certificate,
  key: CryptoKey,
  fingerprint: string,
  opts: SignRootCrlOptions,
): Promise<SignRootCrlResult> {
  const file = join(dataDir, PATHS.rootCrl);
  const previous = await currentRootCrl(file, root);
  const db = await Db.open(join(dataDir, PATHS.vault, VAULT_DB_FILE));
  try {
    const log = await AuditLog.open(db, { now: () => now });
    // Every certificate the issuing CA has had, not only ca/issuing.pem's: renewal kept the key,
    // so an older certificate would go on chaining what a stolen key signs (ca-history.ts).
    const lineage = await issuingSerials(db, issuing);
    // Every serial any root CRL listed, though the file in place does not (lost, moved aside, or
    // brought back older by a restore): a later CRL never undoes a revocation.
    const inFile = previous?.revoked ?? [];
    const carried = (await auditedRevocations(db))
      .filter((e) => !inFile.some((f) => f.serialNumber === e.serialNumber))
      .map(({ serialNumber, revocationDate, reason }) => ({ serialNumber, revocationDate, reason }));
    const { revoked } = withIssuingRevoked([...inFile, ...carried], lineage, opts.revokeIssuing ?? false, now);
    // Above every number signed before, in the file or only in the audit log (a file lost, moved
    // aside, or brought back older by a restore): a CRL number never repeats (RFC 5280 §5.2.3).
    const audited = await lastAuditedCrlNumber(db);
    const base = previous && previous.crlNumber > audited ? previous.crlNumber : audited;
    const crlNumber = base + 1n;
    const crl = await createRootCrl({ cert: root, key, revoked, crlNumber, thisUpdate: now, validityDays: opts.days ?? ROOT_CRL_VALIDITY_DAYS });
    const auditSeq = await replaceFilesAfter([{ path: file, data: crl.pem, mode: 0o644 }], async () => {
      const [appended] = await log.append([{ type: ROOT_CRL_AUDIT_TYPE, actor: 'system', data: rootCrlAuditData(crl, issuing, fingerprint) }]);
      return appended!.seq;
    });
    return {
      file,
      crlNumber: Number(crl.crlNumber),
      previousCrlNumber: previous ? Number(previous.crlNumber) : null,
      previousAuditedNumber: audited > 0n ? Number(audited) : null,
      carriedOver: carried.map((e) => e.serialNumber),
      thisUpdate: crl.thisUpdate.toISOString(),
      nextUpdate: crl.nextUpdate.toISOString(),
      revoked: crl.revoked.map((e) => ({ serialNumber: e.serialNumber, reason: e.reason, revocationDate: e.revocationDate.toISOString() })),
      issuingRevoked: crl.find(issuing.serialNumber) !== undefined,
      issuingSerials: lineage,
      auditSeq,
    };
  } finally {
    await db.close();
  }
}

/**
 * The entry's data: number, dates, revoked serials (`revoked`) and each with its date and reason
 * (`revocations`: a later ceremony carries them over from here), the issuing CA's key (SHA-256 of
 * its SPKI: renew-issuing refuses a certificate for a revoked key), and which root key signed; no secret.
 */
export function rootCrlAuditData(crl: Crl, issuing: Certificate, rootKeySpkiSha256: string): Record<string, unknown> {
  return {
    crlNumber: Number(crl.crlNumber),
    thisUpdate: crl.thisUpdate.toISOString(),
    nextUpdate: crl.nextUpdate.toISOString(),
    revoked: crl.revoked.map((e) => e.serialNumber),
    revocations: crl.revoked.map((e) => ({ serialNumber: e.serialNumber, revocationDate: e.revocationDate.toISOString(), reason: e.reason })),
    issuingRevoked: crl.find(issuing.serialNumber) !== undefined,
    issuingSpkiSha256: spkiSha256(issuing),
    rootKeySpkiSha256,
  };
}

const MOVE_ASIDE =
  'nothing was signed. Keep it as evidence and move it aside, then sign again: the number and every revocation continue from the audit log';

/** The root CRL in place, checked to be this root's; undefined when there is none. */
async function currentRootCrl(file: string, root: Certificate): Promise<Crl | undefined> {
  const r = await readRootCrlFile(file, root);
  if ('missing' in r) return undefined;
  if ('invalid' in r) throw new RootCrlError('ROOT_CRL_INVALID', `${PATHS.rootCrl} ${r.invalid}; ${MOVE_ASIDE}`, { cause: r.cause });
  return r.crl;
}

function parseDays(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > ROOT_CRL_MAX_DAYS) throw new InvalidArgumentError(`expected an integer 1..${ROOT_CRL_MAX_DAYS}, got ${JSON.stringify(v)}`);
  return n;
}

/** Adds `sign-root-crl` to sigil-server's program. */
export function registerSignRootCrlCommand(program: Command, io: MainIo, stdin: NodeJS.ReadStream = process.stdin): void {
  program
    .command('sign-root-crl')
    .description('root key ceremony: re-sign the root CA\'s CRL (ca/root-crl.pem) with the offline root key; safe while the server runs')
    .requiredOption('--data <dir>', 'data directory')
    .requiredOption('--root-key <file>', 'the encrypted root CA key (init wrote it to DIR/ca/root-key.p8.pem)')
    .option('--passphrase-file <file>', 'read the root key passphrase from the first line of this file (default: the terminal, else stdin)')
    .option('--days <n>', `validity of the CRL in days, 1..${ROOT_CRL_MAX_DAYS} (default ${ROOT_CRL_VALIDITY_DAYS}, never past the root's notAfter)`, parseDays)
    .option('--revoke-issuing', 'list the issuing CA as revoked (keyCompromise): IRREVERSIBLE, every certificate of the appliance stops verifying; needs --yes')
    .option('--yes', 'confirm --revoke-issuing')
    .option('--json', 'print one JSON object instead of the summary')
    .addHelpText(
      'after',
      `
POSITIONAL ARGUMENTS
  none

The CRL number is the current root CRL's plus one (1 if the appliance has none). Entries already
revoked stay revoked, also those only the audit log remembers (a root CRL file lost or put back
older). --revoke-issuing lists every certificate the issuing CA has had (the one in
ca/issuing.pem and each one renew-issuing replaced: they share its key). The passphrase is never taken from the command line. Run it before the
root CRL's nextUpdate (\`sigil-server status\` and \`check\` warn 30 days before).

EXAMPLES
  sigil-server sign-root-crl --data /var/lib/sigil --root-key /media/safe/root-key.p8.pem
  sigil-server sign-root-crl --data ./data --root-key ./root-key.p8.pem --passphrase-file /media/safe/pass.txt --days 180 --json
  sigil-server sign-root-crl --data /srv/drill-copy --root-key /media/safe/root-key.p8.pem --revoke-issuing --yes

EXIT CODES
  0 ok · 1 failure (wrong passphrase: ROOT_KEY_PASSPHRASE_WRONG, a key that is not the root's: ROOT_KEY_MISMATCH, a current root CRL not of this root: ROOT_CRL_INVALID, root expired: ISSUER_EXPIRED) · 2 usage (bad flag, --revoke-issuing without --yes, no appliance)
`,
    )
    .action(async (o: { data: string; rootKey: string; passphraseFile?: string; days?: number; revokeIssuing?: boolean; yes?: boolean; json?: boolean }) => {
      if (o.revokeIssuing && !o.yes) {
        throw new RootCrlError('ROOT_CRL_ARGUMENT', '--revoke-issuing revokes the issuing CA for good (every certificate stops verifying): add --yes to confirm');
      }
      const rootKeyPem = readRootKeyFile(o.rootKey);
      const passphrase = await readPassphrase(o.passphraseFile, stdin);
      const r = await signRootCrl({
        dataDir: o.data,
        rootKeyPem,
        passphrase,
        ...(o.days !== undefined ? { days: o.days } : {}),
        revokeIssuing: o.revokeIssuing ?? false,
      });
      io.stdout(
        o.json
          ? `${JSON.stringify(r)}\n`
          : [
              `Root CRL ${r.crlNumber} signed (${replaces(r)}): ${r.file}`,
              `  thisUpdate ${r.thisUpdate}   nextUpdate ${r.nextUpdate}   (sign again before then)`,
              r.revoked.length === 0 ? '  revoked: none' : `  revoked: ${r.revoked.map((e) => `${e.serialNumber} (${e.reason})`).join(', ')}`,
              ...(r.carriedOver.length > 0
                ? [`  carried over from the audit log (earlier root CRLs listed them, the file in place did not; revocation is never undone): ${r.carriedOver.join(', ')}`]
                : []),
              ...(r.issuingRevoked
                ? [
                    '  THE ISSUING CA IS REVOKED: every certificate of this appliance fails revocation checks of the whole chain;',
                    '  a running server refuses every request but those for the CA certificates and CRLs within 10 s',
                    ...(r.issuingSerials.length > 1 ? [`  listed: every certificate the issuing CA has had (renewals kept its key): ${r.issuingSerials.join(', ')}`] : []),
                  ]
                : []),
              `  audit entry ${r.auditSeq} (ca.root-crl.signed). Put the root key back in the safe.`,
              '',
            ].join('\n'),
      );
    });
}

/** What the new CRL replaces, for the summary: the file in place, or what only the audit log remembers. */
function replaces(r: SignRootCrlResult): string {
  if (r.previousCrlNumber !== null) return `replaces ${r.previousCrlNumber}`;
  if (r.previousAuditedNumber === null) return 'the first: none was in place';
  return `none was in place; number and revocations continue from the audit log, last ${r.previousAuditedNumber}`;
}
