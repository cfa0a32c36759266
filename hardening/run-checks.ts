/**
 * Runs every control against a host and collects the report `check` prints.
 */
import { stat } from 'node:fs/promises';
import { HARDENING_CONF_PATH, parseHardeningConf, type HardeningConf } from './conf.js';
import type { CheckContext, Control } from './control.js';
import { CONTROLS } from './controls.js';
import { HardeningConfMissingError, RootNotDirectoryError } from './errors.js';
import { Host } from './host.js';
import { readFile } from 'node:fs/promises';

/** One line of the report. */
export interface ControlReport {
  readonly id: string;
  readonly title: string;
  readonly ok: boolean;
  readonly reason: string;
}

/** The whole report: `ok` is true when every control passed. This is also `check --json`'s shape. */
export interface CheckReport {
  readonly controls: ControlReport[];
  readonly ok: boolean;
}

/** Options of {@link runChecks}. */
export interface RunChecksOptions {
  /** Directory standing for the host's `/`. Default `/` (the running system, with /proc and /sys). */
  root?: string;
  /** Configuration file on this machine. Default: `<root>/etc/sigil/hardening.conf`. */
  confPath?: string;
  /** Controls to run. Default: all of {@link CONTROLS}. */
  controls?: readonly Control[];
}

/**
 * Audits a host: runs each control and returns every verdict. A host that is not hardened is a
 * report with `ok: false`, not an exception.
 *
 * @throws RootNotDirectoryError when `root` is not a directory.
 * @example const report = await runChecks({ root: '/tmp/tree' }); if (!report.ok) …
 */
export async function runChecks(options: RunChecksOptions = {}): Promise<CheckReport> {
  const root = options.root ?? '/';
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new RootNotDirectoryError(root);
  const host = new Host(root);
  let conf: HardeningConf | undefined;
  let confError: string | undefined;
  try {
    // The tree's own conf: a link at its place is resolved inside the tree, as every control reads.
    conf = await loadHardeningConf(options.confPath ?? (await host.resolve(HARDENING_CONF_PATH)));
  } catch (err) {
    confError = (err as Error).message;
  }
  const ctx: CheckContext = { host, conf, confError };
  const controls: ControlReport[] = [];
  for (const control of options.controls ?? CONTROLS) {
    let result;
    try {
      result = await control.check(ctx);
    } catch (err) {
      // A control that cannot read what it needs has not shown the host to be safe.
      result = { ok: false, reason: `could not be checked: ${(err as Error).message}` };
    }
    controls.push({ id: control.id, title: control.title, ok: result.ok, reason: result.reason });
  }
  return { controls, ok: controls.every((c) => c.ok) };
}

/**
 * Reads and parses a hardening.conf file.
 *
 * @throws HardeningConfMissingError when the file does not exist; HardeningConfInvalidError when it does not parse.
 */
export async function loadHardeningConf(path: string): Promise<HardeningConf> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new HardeningConfMissingError(path, { cause: err });
  }
  return parseHardeningConf(text, path);
}
