/**
 * `sigil-server status`: what an administrator must watch — version, whether the server runs and
 * for how long, counts, certificate expiry (root CA, issuing CA, TLS, audit) and the CRL's next
 * update. Reads only public files and plaintext columns: no master key needed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Certificate } from '../../pki/index.js';
import { PATHS } from '../appliance.js';
import { rootCrlState, type RootCrlState } from '../root-crl-state.js';
import { ApplianceMissingError } from '../errors.js';
import { loadConfig } from '../config.js';
import { DEFAULT_RESERVE_MARGIN_BYTES, Db, DISK_RESERVE_FILE, reserveIsWhole, VAULT_DB_FILE, VAULT_KEY_NEXT_FILE, VAULT_KEY_PREV_FILE } from '../vault/index.js';
import { repackReason } from './repack.js';
import { countRows, hasTable, type ApplianceCounts } from './counts.js';
import { DataMissingError } from './errors.js';
import { readOpsState } from './data-claim.js';
import { readRunState } from './run-file.js';
import { findWorkingCopies } from './working-copies.js';

/** Certificates expiring within this many days are flagged. */
export const CERT_WARN_DAYS = 30;
/** A CRL whose nextUpdate is within this many hours (or past) is flagged. */
export const CRL_WARN_HOURS = 24;

/** One watched certificate. */
export interface CertificateStatus {
  name: 'root-ca' | 'issuing-ca' | 'tls' | 'audit';
  subject: string;
  serial: string;
  notAfter: string;
  daysLeft: number;
  warn: boolean;
}

/** The status report (`status --json`). */
export interface StatusReport {
  version: string;
  dataDir: string;
  at: string;
  server:
    | { running: true; pid: number; startedAt: string; uptimeSeconds: number; url?: string }
    | { running: false; staleRunFile?: { pid: number; startedAt: string; reason: string } };
  counts: ApplianceCounts;
  certificates: CertificateStatus[];
  crl: { number: number; thisUpdate: string; nextUpdate: string; hoursLeft: number; warn: boolean } | null;
  /** The root CA's CRL (`ca/root-crl.pem`, renewed at a root key ceremony: `sign-root-crl`); null when absent. */
  rootCrl: RootCrlState | null;
  /** vault.db's page size in bytes; below VAULT_PAGE_SIZE (a vault made before it), or a quarter of its pages free, is a warning: `repack`. */
  vaultPageSize: number;
  /** One line per thing that needs attention. */
  warnings: string[];
}

/** The version in Sigil's package.json, found upwards from this module (source or dist). */
export function sigilVersion(start: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      try {
        const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'sigil' && pkg.version) return pkg.version;
      } catch {
        // Not ours; keep looking.
      }
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}

const CERTS: readonly [CertificateStatus['name'], string][] = [
  ['root-ca', PATHS.rootCert],
  ['issuing-ca', PATHS.issuingCert],
  ['tls', PATHS.tlsCert],
  ['audit', PATHS.auditCert],
];

const DAY_MS = 24 * 3600 * 1000;

/**
 * Builds the status report of `dataDir`.
 * @throws ApplianceMissingError, DataMissingError (vault.db absent), pki errors for a broken PEM.
 */
export async function applianceStatus(opts: { dataDir: string; now?: () => Date }): Promise<StatusReport> {
  const dataDir = resolve(opts.dataDir);
  const at = (opts.now ?? (() => new Date()))();
  if (!existsSync(join(dataDir, PATHS.meta))) throw new ApplianceMissingError(dataDir);
  const vaultDb = join(dataDir, PATHS.vault, VAULT_DB_FILE);
  if (!existsSync(vaultDb)) throw new DataMissingError(`${vaultDb} is missing`);
  const warnings: string[] = [];

  const run = readRunState(dataDir);
  const server: StatusReport['server'] = run.running
    ? {
        running: true,
        pid: run.info.pid,
        startedAt: run.info.startedAt,
        uptimeSeconds: Math.max(0, Math.floor((at.getTime() - Date.parse(run.info.startedAt)) / 1000)),
        ...(run.info.url !== undefined ? { url: run.info.url } : {}),
      }
    : { running: false, ...(run.stale ? { staleRunFile: { pid: run.stale.pid, startedAt: run.stale.startedAt, reason: run.reason } } : {}) };
  if (!run.running && run.stale) warnings.push(`stale run file: pid ${run.stale.pid} (${run.reason}); the server stopped without cleaning up`);
  const ops = readOpsState(dataDir);
  if (ops.running) warnings.push(`\`sigil-server ${ops.info.command ?? 'start'}\` (pid ${ops.info.pid}) is working on the data directory`);
  // A master-key rotation's files (their names only: status has no key): one unfinished, or one
  // committed whose clean-up (old key refused, --shred-old-key-file) has not run.
  if (existsSync(join(dataDir, PATHS.vault, VAULT_KEY_NEXT_FILE))) {
    warnings.push('a master-key rotation is unfinished (vault-key.next.json): run the same rotate-master-key command again; start and backup refuse until then');
  } else if (existsSync(join(dataDir, PATHS.vault, VAULT_KEY_PREV_FILE))) {
    warnings.push('a master-key rotation was committed but its clean-up (old key refused, --shred-old-key-file) did not finish: stop the server and run the same rotate-master-key command again');
  }
  const leftovers = findWorkingCopies(join(dataDir, PATHS.vault));
  if (leftovers.length > 0 && !ops.running) {
    warnings.push(`leftover working copy of vault.db: ${leftovers.join(', ')}; the next backup, restore, repack or start removes it (check fails until then)`);
  }

  // The disk reserve (server/vault/README.md, "A full disk"): missing, the disk filled or lacked room.
  const reserveBytes = await loadConfig(join(dataDir, PATHS.config)).then((c) => c.diskReserveBytes, () => 0);
  const reserve = reserveBytes > 0 ? statSync(join(dataDir, PATHS.vault, DISK_RESERVE_FILE), { throwIfNoEntry: false }) : undefined;
  if (reserveBytes > 0 && !reserveIsWhole(reserve, reserveBytes)) {
    warnings.push(
      `the disk reserve (${PATHS.vault}/${DISK_RESERVE_FILE}) is ${reserve ? 'not whole' : 'missing'}: the disk filled up, or lacked room at start; deletions run, ` +
        `but new messages and uploads answer 507 until ${reserveBytes + DEFAULT_RESERVE_MARGIN_BYTES} bytes are free on its file system (free or add space)`,
    );
  }

  const certificates: CertificateStatus[] = [];
  for (const [name, rel] of CERTS) {
    const cert = Certificate.fromPem(await readFile(join(dataDir, rel), 'utf8'));
    const daysLeft = Math.floor((cert.notAfter.getTime() - at.getTime()) / DAY_MS);
    const warn = daysLeft < CERT_WARN_DAYS;
    certificates.push({ name, subject: cert.subjectString, serial: cert.serialNumber, notAfter: cert.notAfter.toISOString(), daysLeft, warn });
    // The server renews the TLS certificate itself (certs/tls-renewer.ts): a warning that stays means it is not running or the renewal fails.
    // The issuing CA's is renewed at a root key ceremony (renew-issuing.ts), the audit one at open (certs/audit-cert-renewal.ts).
    const hint =
      name === 'tls'
        ? '; the server renews it automatically while running or at its next start (see its log if this persists)'
        : name === 'issuing-ca'
          ? `; renew it at a root key ceremony with the server stopped: sigil-server renew-issuing --data ${dataDir} --root-key ROOT-KEY-FILE`
          : name === 'audit'
            ? `; the server renews it at its next start once the issuing CA's certificate reaches further (if that one ends as soon, renew it first: sigil-server renew-issuing --data ${dataDir} --root-key ROOT-KEY-FILE)`
            : '';
    if (daysLeft < 0) warnings.push(`${name} certificate expired on ${cert.notAfter.toISOString()}${hint}`);
    else if (warn) warnings.push(`${name} certificate expires in ${daysLeft} days (${cert.notAfter.toISOString()})${hint}`);
  }

  // Read-only: status must never change the vault, and needs no write lock beside a running server.
  const db = await Db.open(vaultDb, { readonly: true });
  let counts: ApplianceCounts;
  let crl: StatusReport['crl'] = null;
  let vaultPageSize: number;
  try {
    counts = await countRows(db, at);
    const layout = await db.pageCounts();
    vaultPageSize = layout.pageSize;
    const why = repackReason(layout);
    if (why) warnings.push(`${why}: stop the server and run sigil-server repack`);
    if (await hasTable(db, 'crls')) {
      const row = await db.get<{ number: number; this_update: string; next_update: string }>(
        'SELECT number, this_update, next_update FROM crls ORDER BY number DESC LIMIT 1',
      );
      if (row) {
        const hoursLeft = Math.floor((Date.parse(row.next_update) - at.getTime()) / 3600_000);
        const warn = hoursLeft < CRL_WARN_HOURS;
        crl = { number: row.number, thisUpdate: row.this_update, nextUpdate: row.next_update, hoursLeft, warn };
        if (hoursLeft < 0) warnings.push(`CRL ${row.number} is stale: nextUpdate ${row.next_update} has passed; publish a new CRL`);
        else if (warn) warnings.push(`CRL ${row.number} reaches nextUpdate in ${hoursLeft} h (${row.next_update}); publish a new CRL`);
      }
    }
  } finally {
    await db.close();
  }
  if (!crl) warnings.push('no CRL has been published');
  const root = await rootCrlState(dataDir, at);
  if (root.warning) warnings.push(root.warning);
  return { version: sigilVersion(), dataDir, at: at.toISOString(), server, counts, certificates, crl, rootCrl: root.state, vaultPageSize, warnings };
}
