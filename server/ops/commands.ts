/**
 * The operations subcommands of `sigil-server`: backup, restore, check, status,
 * rotate-master-key, repack. Each builder only parses flags; the work is done by the functions of this
 * folder with injected I/O. Data goes to stdout (a summary, or one JSON object with --json);
 * failures are thrown and become main.ts's one JSON log line and exit code.
 *
 * backup, restore, repack and rotate-master-key hold the data directory's claim (data-claim.ts)
 * and turn SIGINT, SIGTERM and SIGHUP into an abort: the work stops at its next safe point,
 * removes its working copy, releases the claim, and the command exits 128 + the signal's number
 * (130, 143, 129) with OPS_INTERRUPTED. A second signal of the same kind kills at once; what that
 * leaves is removed by the next command or `start` that claims the directory.
 */
import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { MainIo } from '../main.js';
import { createLogger } from '../log.js';
import { createBackup, type BackupResult } from './backup.js';
import { checkAppliance, type CheckReport } from './check.js';
import { sweepLine } from './data-claim.js';
import { CheckFailedError, InterruptedError, RestoreNotConfirmedError, RotateArgumentError } from './errors.js';
import { backupMasterKeySource, currentMasterKeySource } from './master-source.js';
import { restoreBackup, type RestoreResult } from './restore.js';
import { repackVault, type RepackResult } from './repack.js';
import { rotateMasterKey, type RotateResult } from './rotate.js';
import { applianceStatus, type StatusReport } from './status.js';
import { VAULT_PAGE_SIZE } from '../vault/index.js';
import type { SweepResult } from './working-copies.js';

const MK_HELP = 'master key file (default DIR/secrets/master.key, or env SIGIL_MASTER_PASSPHRASE)';

function help(examples: string[], exits: string): string {
  return `
POSITIONAL ARGUMENTS
  none

EXAMPLES
${examples.map((e) => `  ${e}`).join('\n')}

EXIT CODES
  ${exits}
`;
}

/** Adds backup, restore, check, status, rotate-master-key and repack to sigil-server's program. */
export function registerOpsCommands(program: Command, io: MainIo): void {
  const log = createLogger({ write: io.stderr });
  const print = (json: boolean | undefined, value: unknown, text: () => string): void =>
    io.stdout(json ? `${JSON.stringify(value)}\n` : text());
  /** An AbortSignal that the first SIGINT/SIGTERM/SIGHUP aborts with an InterruptedError. */
  const interruptible = (what: string, undone: string): AbortSignal => {
    const ac = new AbortController();
    io.onSignal((signal) => {
      if (ac.signal.aborted) return;
      const n = (osConstants.signals as Record<string, number | undefined>)[signal] ?? 2;
      log.warn(`${what}: ${signal} received, stopping at the next safe point`, { signal });
      ac.abort(new InterruptedError(signal, 128 + n, `${what} interrupted by ${signal}: ${undone}`));
    });
    return ac.signal;
  };
  /** One log line saying which leftover working copies the claim removed. */
  const onSweep =
    (dataDir: string) =>
    (r: SweepResult): void =>
      log.warn(sweepLine(r), { dataDir, count: r.removed.length });

  program
    .command('backup')
    .description('online, consistent, encrypted backup of vault.db (never keys.db); safe while the server runs')
    .requiredOption('--data <dir>', 'data directory')
    .requiredOption('--out <file>', 'backup file to write (must not exist)')
    .option('--master-key-file <path>', MK_HELP)
    .option('--json', 'print one JSON object instead of the summary')
    .addHelpText(
      'after',
      help(
        ['sigil-server backup --data /var/lib/sigil --out /srv/backup/sigil-2026-11-22.sbk --master-key-file /media/key/master.key'],
        '0 ok · 1 failure (wrong master key, unreadable vault, the data in use by another command, a master-key rotation unfinished: ROTATION_PENDING) · 2 usage (bad flag, --out exists) · 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP (working copy removed)',
      ),
    )
    .action(async (o: { data: string; out: string; masterKeyFile?: string; json?: boolean }) => {
      const dataDir = resolve(o.data);
      const r = await createBackup({
        dataDir,
        out: o.out,
        masterKey: currentMasterKeySource(dataDir, o.masterKeyFile, io.env),
        signal: interruptible('backup', 'no backup was written and its working copy was removed'),
        onSweep: onSweep(dataDir),
      });
      log.info('backup written', { path: r.file, bytes: r.bytes, dataDir });
      print(o.json, r, () => backupSummary(r));
    });

  program
    .command('restore')
    .description('replace vault.db from a backup (server stopped); keys.db stays, deleted correspondence stays deleted')
    .requiredOption('--data <dir>', 'data directory')
    .requiredOption('--in <file>', 'backup file made by "sigil-server backup"')
    .option('--master-key-file <path>', MK_HELP)
    .option('--backup-master-key-file <path>', 'key file the backup was made under, if rotated since (or env SIGIL_BACKUP_MASTER_PASSPHRASE)')
    .option('--dry-run', 'verify, decrypt and sweep a working copy; change nothing (allowed while running)')
    .option('--without-keys', 'keys.db is lost or this is a new machine: restore all but the messages, start an empty keys.db')
    .option('--yes', 'confirm replacing vault.db')
    .option('--json', 'print one JSON object instead of the summary')
    .addHelpText(
      'after',
      help(
        [
          'sigil-server restore --data /var/lib/sigil --in /srv/backup/sigil.sbk --dry-run',
          'sigil-server restore --data /var/lib/sigil --in /srv/backup/sigil.sbk --yes --master-key-file /media/key/master.key',
          'sigil-server restore --data /var/lib/sigil-new --in /srv/backup/sigil.sbk --yes --without-keys --master-key-file /media/key/master.key',
        ],
        '0 ok · 1 failure (server running, the data in use by another command, wrong key, corrupt or tampered backup, keys.db missing) · 2 usage (bad flag, no --yes, --without-keys beside a keys.db) · 130/143/129 stopped by a signal before the swap (nothing changed)',
      ),
    )
    .action(
      async (o: {
        data: string;
        in: string;
        masterKeyFile?: string;
        backupMasterKeyFile?: string;
        dryRun?: boolean;
        withoutKeys?: boolean;
        yes?: boolean;
        json?: boolean;
      }) => {
        const dataDir = resolve(o.data);
        if (!o.yes && !o.dryRun) {
          throw new RestoreNotConfirmedError(`restore replaces ${dataDir}/vault/vault.db; pass --yes to confirm (or --dry-run to only verify)`);
        }
        const backupMasterKey = backupMasterKeySource(o.backupMasterKeyFile, io.env);
        const r = await restoreBackup({
          dataDir,
          in: o.in,
          masterKey: currentMasterKeySource(dataDir, o.masterKeyFile, io.env),
          ...(backupMasterKey ? { backupMasterKey } : {}),
          dryRun: o.dryRun ?? false,
          withoutKeys: o.withoutKeys ?? false,
          signal: interruptible('restore', 'vault.db was left as it was and the working copy removed'),
          onSweep: onSweep(dataDir),
        });
        log.info(r.dryRun ? 'backup verified (dry run)' : 'backup restored', { dataDir, count: r.swept.messages });
        print(o.json, r, () => restoreSummary(r));
      },
    );

  program
    .command('check')
    .description('integrity check: databases, every key unwraps, a sample decrypts, the audit log verifies, orphans')
    .requiredOption('--data <dir>', 'data directory')
    .option('--master-key-file <path>', MK_HELP)
    .option('--sample <n>', 'random messages to decrypt besides the newest', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 100_000) throw new InvalidArgumentError(`expected an integer 0..100000, got ${JSON.stringify(v)}`);
      return n;
    })
    .option('--json', 'print one JSON object instead of the report')
    .addHelpText(
      'after',
      help(
        ['sigil-server check --data /var/lib/sigil --master-key-file /media/key/master.key', 'sigil-server check --data ./data --json --sample 200'],
        '0 every item passed (warnings allowed) · 1 an item failed (see the report) · 2 usage',
      ),
    )
    .action(async (o: { data: string; masterKeyFile?: string; sample?: number; json?: boolean }) => {
      const dataDir = resolve(o.data);
      const r = await checkAppliance({
        dataDir,
        masterKey: currentMasterKeySource(dataDir, o.masterKeyFile, io.env),
        ...(o.sample !== undefined ? { messageSample: o.sample } : {}),
      });
      print(o.json, r, () => checkSummary(r));
      if (!r.ok) {
        const failed = r.items.filter((i) => i.status === 'fail').map((i) => i.name);
        throw new CheckFailedError(`check failed: ${failed.join(', ')}`);
      }
    });

  program
    .command('status')
    .description('version, uptime, counts, certificate expiry, CRL and root CRL next update (no master key needed)')
    .requiredOption('--data <dir>', 'data directory')
    .option('--json', 'print one JSON object instead of the summary')
    .addHelpText('after', help(['sigil-server status --data /var/lib/sigil', 'sigil-server status --data ./data --json'], '0 ok (warnings are in the output) · 1 failure · 2 usage'))
    .action(async (o: { data: string; json?: boolean }) => {
      const r = await applianceStatus({ dataDir: o.data });
      print(o.json, r, () => statusSummary(r));
    });

  program
    .command('rotate-master-key')
    .description('re-wrap every key under a new master key (server stopped); the old one is refused afterwards')
    .requiredOption('--data <dir>', 'data directory')
    .option('--master-key-file <path>', `current ${MK_HELP}`)
    .option('--new-master-key-file <path>', 'write the NEW master key file here (or set env SIGIL_NEW_MASTER_PASSPHRASE)')
    .option('--shred-old-key-file', 'overwrite and delete the old key file after success')
    .option('--json', 'print one JSON object instead of the summary')
    .addHelpText(
      'after',
      help(
        [
          'sigil-server rotate-master-key --data /var/lib/sigil --master-key-file /media/old/master.key --new-master-key-file /media/new/master.key',
          "SIGIL_MASTER_PASSPHRASE='old…' SIGIL_NEW_MASTER_PASSPHRASE='new…' sigil-server rotate-master-key --data /var/lib/sigil",
        ],
        '0 ok (also when an earlier, interrupted run had committed the rotation: this run finished its clean-up) · 1 failure (server running, the data in use by another command, wrong current key — also when the new secret already opens the vault but the current one is not the key a committed rotation replaced: a finished rotation or swapped secrets, nothing changed —, a key that opens under neither master key: ROTATION_KEY_UNREADABLE, nothing changed) · 2 usage (no or two new secrets, same secret again, --shred-old-key-file naming a file that is not the replaced key) · 130/143/129 stopped by a signal before re-wrapping',
      ),
    )
    .action(async (o: { data: string; masterKeyFile?: string; newMasterKeyFile?: string; shredOldKeyFile?: boolean; json?: boolean }) => {
      const dataDir = resolve(o.data);
      const newPass = io.env.SIGIL_NEW_MASTER_PASSPHRASE;
      if ((newPass ? 1 : 0) + (o.newMasterKeyFile ? 1 : 0) !== 1) {
        throw new RotateArgumentError('give exactly one new secret: --new-master-key-file PATH or env SIGIL_NEW_MASTER_PASSPHRASE');
      }
      const r = await rotateMasterKey({
        dataDir,
        current: currentMasterKeySource(dataDir, o.masterKeyFile, io.env),
        next: newPass ? { passphrase: newPass } : { keyFilePath: resolve(o.newMasterKeyFile!) },
        shredOldKeyFile: o.shredOldKeyFile ?? false,
        signal: interruptible('rotate-master-key', 'stopped before any key was re-wrapped; nothing was changed'),
        onSweep: onSweep(dataDir),
      });
      if (r.alreadyCommitted) {
        log.info('master-key rotation finished: an earlier run had committed it and was stopped before its clean-up, done now', { dataDir });
      } else log.info('master key rotated', { dataDir, count: r.keyring + r.conversationKeys });
      if (r.earlierCleanupDropped) {
        log.warn(
          'an earlier master-key rotation had not finished its clean-up: the key it replaced was never checked refused nor shredded; destroy that old key file yourself',
          { dataDir },
        );
      }
      print(o.json, r, () => rotateSummary(r));
    });

  program
    .command('repack')
    .description(`rewrite vault.db with ${VAULT_PAGE_SIZE}-byte pages (server stopped), for a vault made before that size; no master key needed`)
    .requiredOption('--data <dir>', 'data directory')
    .option('--json', 'print one JSON object instead of the summary')
    .addHelpText(
      'after',
      help(
        ['sigil-server repack --data /var/lib/sigil', 'sigil-server status --data /var/lib/sigil   # says when a repack is due'],
        '0 ok (also when nothing was to do) · 1 failure (server running, the data in use by another command, disk full, the copy fails its check; vault.db is then unchanged) · 2 usage · 130/143/129 stopped by a signal before the swap (nothing changed)',
      ),
    )
    .action(async (o: { data: string; json?: boolean }) => {
      const dataDir = resolve(o.data);
      const r = await repackVault({
        dataDir,
        signal: interruptible('repack', 'vault.db was left as it was and the working copy removed'),
        onSweep: onSweep(dataDir),
      });
      if (r.repacked) log.info('vault repacked', { dataDir, bytes: r.after.bytes });
      print(o.json, r, () => repackSummary(r));
    });
}

function backupSummary(r: BackupResult): string {
  return [
    `Backup written: ${r.file} (${r.bytes} bytes, id ${r.id}, ${r.createdAt})`,
    `  vault.db snapshot   ${r.dbBytes} bytes; ${r.counts.users} users, ${r.counts.messages} messages, ${r.counts.files} files, audit size ${r.audit.size}`,
    '  keys.db is NOT in the backup (by design). Restoring needs this appliance\'s keys.db and master key.',
    '',
  ].join('\n');
}

function restoreSummary(r: RestoreResult): string {
  const s = r.swept;
  return [
    `${r.dryRun ? 'Verified (dry run, nothing changed):' : 'Restored:'} backup ${r.backup.id} of ${r.backup.createdAt}`,
    `  ${'swept (deleted after the backup)'.padEnd(34)} ${s.messages} messages, ${s.files} files, ${s.conversations} conversations`,
    `  ${`keys without rows ${r.dryRun ? 'to destroy' : 'destroyed'}`.padEnd(34)} ${s.orphanMessageKeys} message keys, ${s.orphanConversationKeys} conversation keys`,
    `  ${'kept from the replaced vault'.padEnd(34)} ${carriedLine(r.carried)}`,
    ...(r.rewrapped ? ['  keyring re-sealed from the backup\'s master key to the current one'] : []),
    ...(r.restoredFiles.length ? [`  public files restored: ${r.restoredFiles.join(', ')}`] : []),
    '',
  ].join('\n');
}

/** The carried security state, as the parts that changed anything. */
function carriedLine(c: RestoreResult['carried']): string {
  const parts = [
    c.revokedCertificates && `${c.revokedCertificates} certificate revocations`,
    c.accounts && `${c.accounts} accounts`,
    c.accountsAddedDisabled && `${c.accountsAddedDisabled} accounts added disabled`,
    c.envelopes && `${c.envelopes} envelopes`,
    c.crls && `${c.crls} CRLs`,
    c.membersRemoved && `${c.membersRemoved} memberships removed`,
    c.memberRoles && `${c.memberRoles} member roles`,
    c.replayGuards && `${c.replayGuards} replay guards`,
  ].filter(Boolean);
  return `${c.sessionsEnded} sessions ended; ${parts.length ? parts.join(', ') : 'no other change since the backup'}`;
}

function checkSummary(r: CheckReport): string {
  const lines = r.items.map((i) => `${i.status.toUpperCase().padEnd(7)} ${i.name.padEnd(18)} ${i.detail}`);
  for (const i of r.items) for (const f of i.failures ?? []) if (i.status !== 'pass') lines.push(`        ${i.name}: ${f.id}: ${f.reason}`);
  lines.push(r.ok ? 'check: ok' : 'check: FAILED', '');
  return lines.join('\n');
}

function statusSummary(r: StatusReport): string {
  const c = r.counts;
  const lines = [
    `sigil-server ${r.version}   ${r.dataDir}`,
    r.server.running
      ? `  server        running, pid ${r.server.pid}, up ${r.server.uptimeSeconds} s since ${r.server.startedAt}${r.server.url ? `, ${r.server.url}` : ''}`
      : '  server        not running',
    `  counts        ${c.users} users, ${c.activeCertificates} active certificates, ${c.conversations} conversations, ${c.messages} messages, ${c.files} files, ${c.auditEntries} audit entries`,
    ...r.certificates.map((x) => `  ${x.name.padEnd(13)} expires ${x.notAfter} (${x.daysLeft} days)${x.warn ? '  WARNING' : ''}`),
    r.crl
      ? `  crl           number ${r.crl.number}, nextUpdate ${r.crl.nextUpdate} (${r.crl.hoursLeft} h)${r.crl.warn ? '  WARNING' : ''}`
      : '  crl           none published  WARNING',
    r.rootCrl
      ? `  root-crl      number ${r.rootCrl.number}, nextUpdate ${r.rootCrl.nextUpdate} (${r.rootCrl.daysLeft} days)${r.rootCrl.warn ? '  WARNING' : ''}`
      : '  root-crl      none  WARNING',
    ...r.warnings.map((w) => `WARNING: ${w}`),
    '',
  ];
  return lines.join('\n');
}

function repackSummary(r: RepackResult): string {
  if (!r.repacked) return `vault.db already has ${r.before.pageSize}-byte pages and ${r.before.freePages} of ${r.before.pages} free: nothing to do\n`;
  return `vault.db repacked: ${r.before.pageSize} → ${r.after.pageSize}-byte pages, ${r.before.bytes} → ${r.after.bytes} bytes (${r.before.freePages} free pages dropped); the old file was overwritten and removed\n`;
}

function rotateSummary(r: RotateResult): string {
  return [
    r.alreadyCommitted
      ? 'Master key rotation already committed by an earlier run that was stopped before its clean-up; the clean-up is done now'
      : `Master key rotated${r.resumed ? ' (an interrupted rotation was finished)' : ''}: ${r.keyring} keyring rows and ${r.conversationKeys} conversation keys re-wrapped`,
    r.kind === 'keyfile' ? `  new key file: ${r.keyFile} — keep it on removable media; start with --master-key-file ${r.keyFile}` : '  new secret: the passphrase in SIGIL_NEW_MASTER_PASSPHRASE; start with SIGIL_MASTER_PASSPHRASE set to it',
    '  the old secret is refused now; backups made before today still need it to be restored',
    ...(r.oldKeyFileShredded ? ['  the old key file was overwritten and deleted'] : []),
    '',
  ].join('\n');
}
