#!/usr/bin/env node
/**
 * `sigil-server`: the appliance binary.
 *
 *   sigil-server init  --data DIR [--listen 127.0.0.1:8443] [--org NAME] [--profile p384|p256|rsa3072]
 *                      [--master-key-file PATH] [--json]
 *   sigil-server start --data DIR [--master-key-file PATH]
 *   sigil-server sign-root-crl --data DIR --root-key FILE [--passphrase-file F] [--days N] [--revoke-issuing --yes]
 *
 * Master key: `--master-key-file PATH`, else env SIGIL_MASTER_PASSPHRASE, else (init) a key file
 * generated at DIR/secrets/master.key — (start) read from there.
 * Exit codes: 0 ok, 1 failure, 2 usage (including a public --listen address).
 */
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { openAppliance, PATHS, type MasterKeySource } from './appliance.js';
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { ApplianceMissingError } from './errors.js';
import { initAppliance, type InitResult } from './init.js';
import { createLogger, errorFields, type Logger } from './log.js';
import { parseListen, assertLanListen } from './net/lan.js';
import { listen } from './tls.js';
import { releaseReserveToOpen, VaultFullError } from './vault/index.js';
import { ROOT_CRL_SAID_CODES, ROOT_CRL_USAGE_CODES } from './root-key-ceremony.js';
import { registerSignRootCrlCommand } from './sign-root-crl.js';
import { registerRenewIssuingCommand } from './renew-issuing.js';
import { createMessaging, type Messaging } from './messaging/index.js';
import { messagingPartsFrom, type MessagingRouteDeps } from './messaging/http.js';
import { conversationsRoutes } from './routes/conversations.js';
import { eventsRoutes } from './routes/events.js';
import { filesRoutes } from './routes/files.js';
import { groupsRoutes } from './routes/groups.js';
import { correspondenceRoutes, messagesRoutes } from './routes/messages.js';
import { auditRoutes, auditTrailOf } from './routes/audit.js';
import {
  claimDataDir,
  claimRunFile,
  InterruptedError,
  OPS_USAGE_CODES,
  readOpsState,
  readRunState,
  registerOpsCommands,
  sigilVersion,
  sweepLine,
  sweepWorkingCopies,
} from './ops/index.js';
import { mallocInUse } from './allocator.js';
import type { Appliance } from './appliance.js';
import type { ExtraRoutes } from './app.js';

/**
 * Messaging (issue 4) built over the opened appliance, and its sub-apps for `createApp`.
 * Started before listening; closed after the listener stopped and before the vault closes.
 */
export async function startMessaging(
  appliance: Appliance,
  now: () => Date,
  log: Logger,
): Promise<{ messaging: Messaging; routes: ExtraRoutes }> {
  const messaging = createMessaging(
    await messagingPartsFrom(appliance, now, {}, (event, fields) => log.info(event, fields)),
  );
  await messaging.start();
  const deps: MessagingRouteDeps = { appliance, messaging };
  return {
    messaging,
    routes: {
      '/v1/conversations': () => conversationsRoutes(deps),
      '/v1/messages': () => messagesRoutes(deps, { stream: { maxPerUser: appliance.config.maxSendStreamsPerUser } }),
      '/v1/groups': () => groupsRoutes(deps),
      '/v1/files': () => filesRoutes(deps),
      '/v1/events': () => eventsRoutes(deps, { maxPerUser: appliance.config.maxEventStreamsPerUser }),
      '/v1/users': () => correspondenceRoutes(deps),
    },
  };
}

/** Exit codes of sigil-server. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Error codes that mean "the operator asked for something invalid" → exit 2. */
const USAGE_CODES = new Set([
  'LISTEN_INVALID',
  'LISTEN_PUBLIC',
  'CIDR_INVALID',
  'CONFIG_INVALID',
  'APPLIANCE_EXISTS',
  'APPLIANCE_NOT_INITIALISED',
  'MASTER_KEY_ARGUMENT',
  'MASTER_KEY_EXISTS',
  ...OPS_USAGE_CODES,
  ...ROOT_CRL_USAGE_CODES,
]);

/** Error codes (exit 1, or 128 + signal) whose message is the log line's `msg`: the operator acts on it. */
const SAID_CODES = new Set([
  'OPS_DATA_IN_USE',
  'OPS_SERVER_RUNNING',
  'OPS_INTERRUPTED',
  'ISSUER_EXPIRED',
  'ROTATION_PENDING',
  'ROTATION_KEY_UNREADABLE',
  // A refused master key says which key it is, and during or after a rotation what to run.
  'MASTER_KEY_WRONG',
  'MASTER_KEY_FILE_INVALID',
  // A start on a full disk says so, and what to do (vault.ts fullDiskAtOpen, the claim above).
  'VAULT_FULL',
  ...ROOT_CRL_SAID_CODES,
]);

/** Injected I/O so the commands can be tested apart from the process. */
export interface MainIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Registers a shutdown handler for SIGTERM/SIGINT/SIGHUP (once each). */
  onSignal: (handler: (signal: string) => void) => void;
}

const defaultIo: MainIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  env: process.env,
  onSignal: (h) => {
    process.once('SIGTERM', () => h('SIGTERM'));
    process.once('SIGINT', () => h('SIGINT'));
    process.once('SIGHUP', () => h('SIGHUP'));
  },
};

function masterKeyFor(dataDir: string, flag: string | undefined, env: NodeJS.ProcessEnv, forInit: boolean): MasterKeySource | undefined {
  if (flag) return { keyFilePath: resolve(flag) };
  const passphrase = env.SIGIL_MASTER_PASSPHRASE;
  if (passphrase) return { passphrase };
  return forInit ? undefined : { keyFilePath: join(dataDir, PATHS.masterKeyFile) };
}

/** The friendly summary of `init` without --json. */
export function initSummary(r: InitResult): string {
  const lines = [
    `Sigil appliance initialised in ${r.dataDir}`,
    `  serves at            ${r.url}   (start it: sigil-server start --data ${r.dataDir})`,
    `  CA root / chain      ${r.ca.root}  /  ${r.ca.chain}`,
    `  root CA private key  ${r.ca.rootKeyFile}`,
    `  root key passphrase  ${r.ca.rootKeyPassphrase}   (shown once: write it down, move the key offline)`,
    '',
    `First security officer: login "${r.officer.login}"`,
    `  envelope (print it)  ${r.officer.envelopeText}  and  ${r.officer.envelopeHtml}`,
    `  key + certificate    ${r.officer.p12}`,
    `  PKCS#12 password     ${r.officer.p12Password}`,
    `  one-time password    in the envelope; it must be changed at first login`,
    '',
  ];
  if (r.masterKey.kind === 'keyfile' && r.masterKey.generated) {
    lines.push(
      '!!! ================================================================================ !!!',
      `!!! MASTER KEY FILE: ${r.masterKey.keyFile}`,
      '!!! Whoever holds this file and the data directory can open the vault. In production',
      '!!! move it to removable media kept in the safe, and start with --master-key-file PATH,',
      '!!! or initialise with SIGIL_MASTER_PASSPHRASE instead. Losing it loses the vault.',
      '!!! ================================================================================ !!!',
      '',
    );
  } else if (r.masterKey.kind === 'keyfile') {
    lines.push(`Master key file: ${r.masterKey.keyFile} (keep it on removable media).`, '');
  } else {
    lines.push('Master key: derived from SIGIL_MASTER_PASSPHRASE (set it again to start).', '');
  }
  return lines.join('\n');
}

/** Builds the commander program; `run` functions receive parsed options and injected I/O. */
export function buildProgram(io: MainIo = defaultIo, onStarted?: (info: { url: string; stop: () => Promise<void> }) => void): Command {
  const program = new Command('sigil-server')
    .description('Sigil messenger appliance: LAN-only HTTPS server with an internal CA and an encrypted vault')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  program.addHelpText(
    'after',
    `
EXAMPLES
  sigil-server init --data /var/lib/sigil --listen 10.1.2.3:8443 --org "Ministry"
  sigil-server start --data /var/lib/sigil --master-key-file /media/key/master.key
  sigil-server sign-root-crl --data /var/lib/sigil --root-key /media/safe/root-key.p8.pem   # yearly root key ceremony

EXIT CODES
  0  ok
  1  failure (see the JSON log line on stderr)
  2  usage: bad flag, public --listen address, existing or missing appliance
`,
  );

  program
    .command('init')
    .description('create the appliance: CA, TLS and audit certificates, vault, first security officer')
    .requiredOption('--data <dir>', 'data directory (must be empty or absent)')
    .option('--listen <host:port>', 'LAN address to serve on (loopback, private or link-local)', '127.0.0.1:8443')
    .option('--org <name>', 'organisation name in certificates', 'Sigil')
    .addOption(new Option('--profile <name>', 'algorithm profile').choices(['p384', 'p256', 'rsa3072']).default('p384'))
    .option('--master-key-file <path>', 'write a NEW master key file here (e.g. on removable media)')
    .option('--json', 'print one JSON object instead of the summary')
    .addHelpText(
      'after',
      `
POSITIONAL ARGUMENTS
  none

EXAMPLES
  sigil-server init --data ./data
  SIGIL_MASTER_PASSPHRASE='…' sigil-server init --data /var/lib/sigil --listen 10.0.0.5:8443 --json

EXIT CODES
  0 ok · 1 failure · 2 usage (public --listen, existing appliance, bad flag)
`,
    )
    .action(async (o: { data: string; listen: string; org: string; profile: 'p384' | 'p256' | 'rsa3072'; masterKeyFile?: string; json?: boolean }) => {
      const dataDir = resolve(o.data);
      const r = await initAppliance({
        dataDir,
        listen: o.listen,
        org: o.org,
        profile: o.profile,
        masterKey: masterKeyFor(dataDir, o.masterKeyFile, io.env, true),
      });
      io.stdout(o.json ? `${JSON.stringify(r)}\n` : initSummary(r));
    });

  program
    .command('start')
    .description('serve the appliance over HTTPS until SIGTERM or SIGINT')
    .requiredOption('--data <dir>', 'data directory made by init')
    .option('--master-key-file <path>', 'master key file (default DIR/secrets/master.key, or SIGIL_MASTER_PASSPHRASE)')
    .addHelpText(
      'after',
      `
POSITIONAL ARGUMENTS
  none

EXAMPLES
  sigil-server start --data ./data
  sigil-server start --data /var/lib/sigil --master-key-file /media/key/master.key

EXIT CODES
  0 stopped cleanly · 1 failure · 2 usage (public listen address in config, no appliance)
`,
    )
    .action(async (o: { data: string; masterKeyFile?: string }) => {
      const dataDir = resolve(o.data);
      if (!existsSync(join(dataDir, PATHS.meta))) throw new ApplianceMissingError(dataDir);
      const config = await loadConfig(join(dataDir, PATHS.config));
      const log = createLogger({ level: config.logLevel, write: io.stderr });
      const address = parseListen(config.listen);
      assertLanListen(address);
      // The data directory's claim first (server/ops/data-claim.ts): refused while a backup,
      // restore, repack or rotation runs. Then the run file, which says "a server holds this
      // directory": status reads it, and restore, repack and rotate-master-key refuse to run
      // under it (backup and restore --dry-run may). Holding both, no one can be making a working
      // copy, so what an interrupted command left is removed before the vault opens.
      // A disk full to the last byte has no room for the claim below, nor for SQLite's -shm and
      // -wal: the reserve an earlier run left is released first, unless another process holds the
      // directory (then the claim refuses, saying who).
      const vaultLog = (event: string, fields: Record<string, unknown>) => log.warn(event, fields);
      const reserveReleasedToOpen =
        !readRunState(dataDir).running && !readOpsState(dataDir).running && (await releaseReserveToOpen(join(dataDir, PATHS.vault), config.diskReserveBytes, vaultLog));
      // With no reserve to release, a full disk fails here: said as such, not as a bare ENOSPC.
      const noRoom = (err: unknown): unknown =>
        (err as NodeJS.ErrnoException | null)?.code === 'ENOSPC'
          ? new VaultFullError(`the disk holding ${dataDir} is full: the server cannot write its claim and run files; free space on that file system and start again`, { cause: err })
          : err;
      const ops = await claimDataDir(dataDir, 'start', { besideServer: true, sweep: false }).catch((err: unknown) => Promise.reject(noRoom(err)));
      let run: ReturnType<typeof claimRunFile>;
      try {
        try {
          run = claimRunFile(dataDir, { url: `https://${config.listen}`, version: sigilVersion() });
        } catch (err) {
          throw noRoom(err);
        }
        try {
          const swept = await sweepWorkingCopies(join(dataDir, PATHS.vault));
          if (swept.removed.length > 0 || swept.kept.length > 0) log.warn(sweepLine(swept), { dataDir, count: swept.removed.length });
        } catch (err) {
          run.release();
          throw err;
        }
      } finally {
        ops.release();
      }
      const appliance = await openAppliance({
        dataDir,
        config,
        masterKey: masterKeyFor(dataDir, o.masterKeyFile, io.env, false) as MasterKeySource,
        reserveReleasedToOpen,
        // Announced like messaging's (messaging.migration): an upgrade's first start is not silent.
        onMigration: (file, id, phase, ms) => log.info('vault.migration', { file, migration: id, phase, ms }),
        // The CRL refresher's lines go to the server's log like every other.
        log,
      }).catch((err: unknown) => {
        run.release();
        throw err;
      });
      if (appliance.vault.rotationCleanupPending) {
        log.warn('a master-key rotation was committed but its clean-up (old key refused, --shred-old-key-file) did not finish: stop the server and run the same rotate-master-key command again', { dataDir });
      }
      const now = () => new Date();
      const { messaging, routes } = await startMessaging(appliance, now, log).catch(async (err) => {
        await appliance.close();
        run.release();
        throw err;
      });
      // Audit trail (issue 6): checkpoints signed every few seconds while entries arrive.
      const auditTrail = auditTrailOf(appliance, now, (err) => log.error('audit checkpoint failed', errorFields(err)));
      auditTrail.start();
      const app = createApp({ appliance, now, config, log }, { ...routes, '/v1/audit': (d) => auditRoutes(d, auditTrail) });
      const listener = await listen({ app, appliance, address, allowedPeers: config.allowedPeers, log }).catch(async (err) => {
        await auditTrail.stop();
        await messaging.close();
        await appliance.close();
        run.release();
        throw err;
      });
      log.info('sigil-server listening', { url: listener.url, dataDir, pid: process.pid, threadPool: process.env.UV_THREADPOOL_SIZE ?? '4', malloc: mallocInUse() }); // 4: libuv's default (threadpool.ts)
      let stopping: Promise<void> | undefined;
      const stop = () =>
        (stopping ??= (async () => {
          // Live streams first: they are requests that never finish, and would hold the listener's
          // close for its whole grace period (10 s) while requests in flight finish normally.
          messaging.endLiveStreams();
          await listener.stop();
          await auditTrail.stop();
          await messaging.close();
          await appliance.close();
          run.release();
          log.info('sigil-server stopped', {});
        })());
      io.onSignal((signal) => {
        log.info('stopping', { signal });
        void stop();
      });
      onStarted?.({ url: listener.url, stop });
      await new Promise<void>((r) => listener.server.once('close', () => r()));
      await stop();
    });
  registerOpsCommands(program, io);
  registerSignRootCrlCommand(program, io);
  registerRenewIssuingCommand(program, io);
  return program;
}

/** Runs the CLI; returns the exit code. Errors become one JSON line on stderr. */
export async function main(argv: string[], io: MainIo = defaultIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const code = (err as { code?: unknown }).code;
    const usage = typeof code === 'string' && USAGE_CODES.has(code);
    const said = usage || (typeof code === 'string' && SAID_CODES.has(code));
    const log: Logger = createLogger({ write: io.stderr });
    log.error(said ? (err as Error).message : 'sigil-server failed', {
      ...errorFields(err),
      stack: undefined,
    });
    if (err instanceof InterruptedError) return err.exitCode;
    return usage ? EXIT.usage : EXIT.failure;
  }
}

/** True when this module is the process entry point (also through an npm bin symlink). */
function isEntryPoint(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(argv1)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `sigil-server status | head` closes the pipe early: exit quietly instead of an EPIPE stack
  // trace. Any other failure to write (a full disk behind `> file`) is one line and exit 1.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
      if (stream === process.stdout) process.stderr.write(`error: cannot write the output (${err.code ?? err.message})\n`);
      process.exit(EXIT.failure);
    });
  }
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
