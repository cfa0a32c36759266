/**
 * `check [--root DIR] [--conf FILE] [--json]`: audits a host (or a tree standing for one) and prints
 * each control as PASS/FAIL with its reason. Split as builder (flags only) and {@link runCheck}
 * (the work, with injected output) so both are tested apart.
 */
import { Command, CommanderError } from 'commander';
import { runChecks, type CheckReport } from './run-checks.js';

/** Exit codes of `check`. */
export const CHECK_EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Where `check` writes. */
export interface CheckIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Parsed flags. */
export interface CheckOptions {
  root: string;
  conf?: string;
  json: boolean;
}

const HELP_AFTER = `
POSITIONAL ARGUMENTS
  none

EXIT CODES
  0  every control passed
  1  at least one control failed (each failure is printed with its reason)
  2  usage error: unknown flag, or --root is not a directory

EXAMPLES
  sudo /opt/sigil/hardening/check
  hardening/check --root /tmp/tree --json
  hardening/check --root /mnt/appliance-image --conf ./hardening.conf
`;

/** Builds the command (flags only); `action` receives the parsed options. */
export function buildCheckCommand(io: CheckIo, action: (opts: CheckOptions) => Promise<void>): Command {
  return new Command('check')
    .description('Audit a Sigil appliance host: systemd sandbox, firewall, modules, sysctl, core dumps, swap, data directory.')
    .option('--root <dir>', 'directory standing for the host (a test tree, a mounted image); / is the running system', '/')
    .option('--conf <file>', 'hardening.conf to judge against (default: ROOT/etc/sigil/hardening.conf)')
    .option('--json', 'print {"controls":[{"id","title","ok","reason"}],"ok"} instead of text', false)
    .addHelpText('after', HELP_AFTER)
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .allowExcessArguments(false)
    .action(async (opts: CheckOptions) => action(opts));
}

/** Runs the audit and prints it; returns the exit code. */
export async function runCheck(opts: CheckOptions, io: CheckIo): Promise<number> {
  let report: CheckReport;
  try {
    report = await runChecks({ root: opts.root, confPath: opts.conf });
  } catch (err) {
    const code = (err as { code?: string }).code;
    io.stderr(`error: ${(err as Error).message}\n`);
    return code === 'ROOT_NOT_DIRECTORY' ? CHECK_EXIT.usage : CHECK_EXIT.failed;
  }
  if (opts.json) {
    io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const width = Math.max(...report.controls.map((c) => c.id.length));
    for (const c of report.controls) io.stdout(`${c.ok ? 'PASS' : 'FAIL'}  ${c.id.padEnd(width)}  ${c.reason}\n`);
    const failed = report.controls.filter((c) => !c.ok).length;
    io.stdout(`${report.controls.length - failed} passed, ${failed} failed\n`);
  }
  return report.ok ? CHECK_EXIT.ok : CHECK_EXIT.failed;
}

/**
 * The whole CLI: parses `argv` (without node and script) and runs. Never exits the process.
 *
 * @example process.exitCode = await checkMain(process.argv.slice(2), { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) })
 */
export async function checkMain(argv: readonly string[], io: CheckIo): Promise<number> {
  let code: number = CHECK_EXIT.ok;
  const command = buildCheckCommand(io, async (opts) => {
    code = await runCheck(opts, io);
  });
  try {
    await command.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors.
      return err.exitCode === 0 ? CHECK_EXIT.ok : CHECK_EXIT.usage;
    }
    throw err;
  }
  return code;
}
