/**
 * `sigil-server renew-issuing`: the root key ceremony that gives the issuing CA a new certificate
 * before its own expires (init made it for 10 years; `sigil-server status` warns 30 days before).
 * Renewal, not re-keying (pki `renewIssuingCa`): the same name and key, so every certificate, CRL
 * and signed message the issuing CA made stays valid and chains to the new certificate.
 *
 * - The root key comes as for `sign-root-crl` (openRootKey: ROOT_KEY_PASSPHRASE_WRONG,
 *   ROOT_KEY_UNREADABLE, ROOT_KEY_MISMATCH), the passphrase never from argv.
 * - The issuing certificate in place must be one the root signed (a file swapped for another CA's
 *   would otherwise get the root's signature), and neither it nor any certificate the issuing CA
 *   had before (an older one put back in its place) revoked by the root CRL in place nor by any
 *   root CRL the audit log records, nor its key named revoked there: renewing a revoked CA would
 *   undo its revocation (ISSUING_CA_REVOKED). An unreadable root CRL is refused (ROOT_CRL_INVALID): it could say so.
 * - The server must be stopped (OPS_SERVER_RUNNING): it holds the issuing certificate in memory and
 *   caps what it issues at that certificate's notAfter. The data directory's claim keeps every
 *   other ops command away meanwhile.
 * - `ca/chain.pem` (issuing + root) and then `ca/issuing.pem` are replaced atomically (temp file,
 *   fsync, rename, fsync of `ca/`), after the audit entry `ca.issuing.renewed` (actor `system`: old
 *   and new serial, dates, the root key's SPKI fingerprint) is in vault.db. A crash between the two
 *   renames leaves two valid certificates for the same key and name: either chains everything.
 * - Clients fetch the chain from `GET /v1/ca` (it changes) and pin only the root (it does not), so
 *   workstations need nothing. Backups hold the certificate of their day, still valid for its key.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { Certificate, renewIssuingCa } from '../pki/index.js';
import { PATHS } from './appliance.js';
import { AuditLog } from './audit/index.js';
import { auditedRevocations, ISSUING_RENEWED_AUDIT_TYPE, issuingSerials, revokedIssuingKeys, spkiSha256 } from './ca-history.js';
import { readRootCrlFile } from './certs/root-crl-file.js';
import type { MainIo } from './main.js';
import { claimDataDir } from './ops/data-claim.js';
import { openCeremony, readPassphrase, readRootKeyFile, RootCrlError } from './root-key-ceremony.js';
import { Db, replaceFilesAfter, VAULT_DB_FILE } from './vault/index.js';

/** Longest `--days`, as init's default: the new certificate never outlives the root either. */
export const ISSUING_MAX_DAYS = 3650;

/** Options of {@link renewIssuing}. */
export interface RenewIssuingOptions {
  dataDir: string;
  /** The encrypted root key PEM (init's `ca/root-key.p8.pem`, brought back from the safe). */
  rootKeyPem: string;
  passphrase: string;
  /** Validity in days; default {@link ISSUING_MAX_DAYS}, capped at the root's notAfter. */
  days?: number;
  now?: () => Date;
}

/** What the ceremony did (`--json`). */
export interface RenewIssuingResult {
  file: string;
  previousSerial: string;
  previousNotAfter: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  auditSeq: number;
}

/**
 * Renews the issuing CA's certificate and puts it in place.
 * @throws ApplianceMissingError, RootCrlError, DataInUseError / ServerRunningError (ops), IssuerExpiredError (the root has expired).
 */
export async function renewIssuing(opts: RenewIssuingOptions): Promise<RenewIssuingResult> {
  const { dataDir, now, root, key, fingerprint } = await openCeremony(opts);
  const claim = await claimDataDir(dataDir, 'renew-issuing', { sweep: false });
  try {
    const issuing = Certificate.fromPem(await readFile(join(dataDir, PATHS.issuingCert), 'utf8'));
    if (!(await issuing.isIssuedBy(root))) {
      throw new RootCrlError('ROOT_KEY_MISMATCH', `${PATHS.issuingCert} is not signed by the root CA (${root.subjectString}): nothing was signed`);
    }
    await refuseIfRevoked(dataDir, root, issuing);
    const renewed = await renewIssuingCa({ root: { cert: root, key }, issuing, now: () => now, validityDays: opts.days ?? ISSUING_MAX_DAYS });
    return await putInPlace(dataDir, now, root, issuing, renewed, fingerprint);
  } finally {
    claim.release();
  }
}

/**
 * Refuses to renew an issuing CA the root revoked: any certificate it has had (ca-history.ts; the
 * one in place may be an older one put back, whose serial the revocation also lists only since
 * that fix) on the root CRL in place or on any root CRL the audit log says was signed (a file
 * brought back older by hand or a restore), or its key named as revoked by one. A root CRL that
 * cannot be read leaves that unknown: refused too, until a ceremony signs a readable one.
 */
async function refuseIfRevoked(dataDir: string, root: Certificate, issuing: Certificate): Promise<void> {
  const revoked = (why: string, serial = issuing.serialNumber) =>
    new RootCrlError(
      'ISSUING_CA_REVOKED',
      `${why} revokes the issuing CA (${serial}${serial === issuing.serialNumber ? '' : `, a certificate it had before ${issuing.serialNumber}`}); ` +
        'a new certificate for its key would undo that: nothing was signed',
    );
  const file = await readRootCrlFile(join(dataDir, PATHS.rootCrl), root);
  if ('invalid' in file) {
    throw new RootCrlError('ROOT_CRL_INVALID', `${PATHS.rootCrl} ${file.invalid}, so whether the issuing CA is revoked cannot be told: sign a root CRL first (sign-root-crl); nothing was signed`);
  }
  const db = await Db.open(join(dataDir, PATHS.vault, VAULT_DB_FILE), { readonly: true });
  try {
    const lineage = await issuingSerials(db, issuing);
    if ('crl' in file) {
      const listed = lineage.find((s) => file.crl.find(s) !== undefined);
      if (listed !== undefined) throw revoked(`root CRL ${file.crl.crlNumber}`, listed);
    }
    const audited = (await auditedRevocations(db)).find((e) => lineage.includes(e.serialNumber));
    if (audited) throw revoked(`root CRL ${audited.crlNumber ?? '?'} (audit log)`, audited.serialNumber);
    if ((await revokedIssuingKeys(db)).has(spkiSha256(issuing))) throw revoked('a root CRL (audit log: the key)');
  } finally {
    await db.close();
  }
}

async function putInPlace(dataDir: string, now: Date, root: Certificate, previous: Certificate, renewed: Certificate, fingerprint: string): Promise<RenewIssuingResult> {
  const file = join(dataDir, PATHS.issuingCert);
  const db = await Db.open(join(dataDir, PATHS.vault, VAULT_DB_FILE));
  try {
    const log = await AuditLog.open(db, { now: () => now });
    // The chain first: a crash between the renames leaves two valid certificates for one key.
    const files = [
      { path: join(dataDir, PATHS.chain), data: renewed.pem + root.pem, mode: 0o644 },
      { path: file, data: renewed.pem, mode: 0o644 },
    ];
    const entry = {
      type: ISSUING_RENEWED_AUDIT_TYPE,
      actor: 'system',
      data: {
        notAfter: renewed.notAfter.toISOString(),
        notBefore: renewed.notBefore.toISOString(),
        previousNotAfter: previous.notAfter.toISOString(),
        previousSerial: previous.serialNumber,
        rootKeySpkiSha256: fingerprint,
        serial: renewed.serialNumber,
      },
    };
    const [appended] = await replaceFilesAfter(files, () => log.append([entry]));
    return {
      file,
      previousSerial: previous.serialNumber,
      previousNotAfter: previous.notAfter.toISOString(),
      serial: renewed.serialNumber,
      notBefore: renewed.notBefore.toISOString(),
      notAfter: renewed.notAfter.toISOString(),
      auditSeq: appended!.seq,
    };
  } finally {
    await db.close();
  }
}

function parseDays(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > ISSUING_MAX_DAYS) throw new InvalidArgumentError(`expected an integer 1..${ISSUING_MAX_DAYS}, got ${JSON.stringify(v)}`);
  return n;
}

/** Adds `renew-issuing` to sigil-server's program. */
export function registerRenewIssuingCommand(program: Command, io: MainIo, stdin: NodeJS.ReadStream = process.stdin): void {
  program
    .command('renew-issuing')
    .description("root key ceremony: a new certificate for the issuing CA's own key and name (ca/issuing.pem); the server must be stopped")
    .requiredOption('--data <dir>', 'data directory')
    .requiredOption('--root-key <file>', 'the encrypted root CA key (init wrote it to DIR/ca/root-key.p8.pem)')
    .option('--passphrase-file <file>', 'read the root key passphrase from the first line of this file (default: the terminal, else stdin)')
    .option('--days <n>', `validity in days, 1..${ISSUING_MAX_DAYS} (default ${ISSUING_MAX_DAYS}, never past the root's notAfter)`, parseDays)
    .option('--json', 'print one JSON object instead of the summary')
    .addHelpText(
      'after',
      `
POSITIONAL ARGUMENTS
  none

Everything the issuing CA signed stays valid: the new certificate has its name and key. Stop the
server first; start it again afterwards. Workstations need nothing (they pin the root and fetch
the chain). The passphrase is never taken from the command line. \`sigil-server status\` warns 30
days before the issuing CA's certificate expires.

EXAMPLES
  sigil-server renew-issuing --data /var/lib/sigil --root-key /media/safe/root-key.p8.pem
  sigil-server renew-issuing --data ./data --root-key ./root-key.p8.pem --passphrase-file /media/safe/pass.txt --days 1825 --json

EXIT CODES
  0 ok · 1 failure (server running: OPS_SERVER_RUNNING, wrong passphrase: ROOT_KEY_PASSPHRASE_WRONG, a key that is not the root's or an issuing certificate the root did not sign: ROOT_KEY_MISMATCH, issuing CA revoked: ISSUING_CA_REVOKED, root expired: ISSUER_EXPIRED) · 2 usage (bad flag, no appliance)
`,
    )
    .action(async (o: { data: string; rootKey: string; passphraseFile?: string; days?: number; json?: boolean }) => {
      const rootKeyPem = readRootKeyFile(o.rootKey);
      const passphrase = await readPassphrase(o.passphraseFile, stdin);
      const r = await renewIssuing({ dataDir: o.data, rootKeyPem, passphrase, ...(o.days !== undefined ? { days: o.days } : {}) });
      io.stdout(
        o.json
          ? `${JSON.stringify(r)}\n`
          : [
              `Issuing CA renewed: ${r.file}`,
              `  serial ${r.serial} (was ${r.previousSerial}), valid ${r.notBefore} .. ${r.notAfter} (was until ${r.previousNotAfter})`,
              '  same name and key: every certificate it issued stays valid. Start the server again.',
              `  audit entry ${r.auditSeq} (${ISSUING_RENEWED_AUDIT_TYPE}). Put the root key back in the safe.`,
              '',
            ].join('\n'),
      );
    });
}
