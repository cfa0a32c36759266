/**
 * The environment systemd gives the service, from every source check can read: system.conf's
 * `DefaultEnvironment=`, the unit's `Environment=`, the files `EnvironmentFile=` names, and what
 * `UnsetEnvironment=` takes out of it; and unit.environment, which keeps out of it the variables that
 * make node or its loaders run other code. unit.preload (unit-ownership.ts) reads LD_PRELOAD here.
 * A variable can come from any of these, so a control that read one source would miss the others.
 */
import { fail, pass, type CheckContext, type ControlResult } from './control.js';
import type { Host } from './host.js';
import { loadIniWithDropIns, SYSTEMD_CONF_DIRS, type IniAssignment, type IniSettings } from './ini-file.js';
import { environmentWords, parseEnvFile } from './systemd-env.js';

/** A variable the service gets, with where it was set. */
interface Assignment {
  readonly name: string;
  readonly value: string;
  readonly at: string;
  /** From the manager's `DefaultEnvironment=`, which its runtime environment (`systemctl set-environment`) can override. */
  readonly manager?: true;
}

/** A `%` specifier left once `%%` (a literal `%`) is taken out: systemd expands it, check does not. */
const hasSpecifier = (text: string): boolean => text.replace(/%%/g, '').includes('%');

/**
 * The files `EnvironmentFile=` names, as systemd reads them: `-` (optional) taken off and `%%` made
 * `%`; `file` undefined where check cannot tell the path (a % specifier or a wildcard). Empty
 * assignments (resets) and relative paths (systemd ignores them) are left out.
 */
export function environmentFiles(s: IniSettings): { value: string; at: string; file: string | undefined }[] {
  const out: { value: string; at: string; file: string | undefined }[] = [];
  for (const a of s.all('Service', 'EnvironmentFile')) {
    if (a.value === '') continue;
    const at = `${a.file}:${a.line}`;
    const path = a.value.replace(/^-/, '');
    if (hasSpecifier(path) || /[*?[]/.test(path)) out.push({ value: a.value, at, file: undefined });
    else if (path.startsWith('/')) out.push({ value: a.value, at, file: path.replace(/%%/g, '%') });
  }
  return out;
}

/**
 * The assignments of the variables `wanted` picks in the words of one `key=value` line (the unit's
 * `Environment=`, system.conf's `DefaultEnvironment=`), or why check cannot tell what it sets.
 * `specifiers`: the unit's lines expand `%` specifiers (check does not), system.conf's do not.
 */
function assignmentsInWords(a: IniAssignment, wanted: (name: string) => boolean, specifiers: boolean): Assignment[] | string {
  const at = `${a.file}:${a.line}`;
  const words = environmentWords(a.value);
  if (!words) return `${a.key}=${a.value} at ${at}: a quote or escape systemd rejects; check cannot tell which variables it sets`;
  const out: Assignment[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq <= 0) continue; // not an assignment: systemd ignores it
    const name = word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (specifiers && hasSpecifier(name)) return `${a.key}=${a.value} at ${at}: a % specifier in a variable name, which check does not expand`;
    if (!wanted(name)) continue;
    if (specifiers && hasSpecifier(value)) return `${a.key}=${a.value} at ${at}: ${name} has a % specifier, which check does not expand`;
    out.push({ name, value: specifiers ? value.replace(/%%/g, '%') : value, at });
  }
  return out;
}

/**
 * Every assignment of a variable `wanted` picks that the service gets, in the order systemd applies
 * them (a later one overrides): the manager's `DefaultEnvironment=` (system.conf and its drop-ins,
 * passed to every service), the unit's `Environment=` (the unit and its drop-ins), and the files
 * `EnvironmentFile=` names. All of them, even one a later assignment replaces or resets: if each is
 * safe, whichever wins is. A reason instead where check cannot tell what systemd would set (a
 * specifier, a wildcard, syntax systemd rejects). Not read, because it lives in PID 1's memory and
 * not in a file: the manager's runtime environment (`systemctl set-environment`); the controls
 * require the unit to keep it out instead ({@link unsetByName}).
 */
export async function serviceEnvironment(s: IniSettings, host: Host, wanted: (name: string) => boolean): Promise<{ ok: true; found: Assignment[] } | { ok: false; reason: string }> {
  const found: Assignment[] = [];
  const manager = await loadIniWithDropIns(host, SYSTEMD_CONF_DIRS, 'system.conf');
  const sources = [
    { lines: manager?.settings.all('Manager', 'DefaultEnvironment') ?? [], specifiers: false, manager: true },
    { lines: s.all('Service', 'Environment'), specifiers: true, manager: false },
  ];
  for (const { lines, specifiers, manager: fromManager } of sources) {
    for (const a of lines) {
      const got = assignmentsInWords(a, wanted, specifiers);
      if (typeof got === 'string') return { ok: false, reason: got };
      found.push(...(fromManager ? got.map((g) => ({ ...g, manager: true as const })) : got));
    }
  }
  for (const e of environmentFiles(s)) {
    if (e.file === undefined) {
      return { ok: false, reason: `EnvironmentFile=${e.value} at ${e.at}: a % specifier or wildcard, which check does not expand, so it cannot read the file` };
    }
    const file = e.file;
    // Missing: systemd skips it (with "-") or does not start the service; either way it sets nothing.
    const text = await host.readText(file);
    if (text === undefined) continue;
    for (const v of parseEnvFile(text)) if (wanted(v.name)) found.push({ name: v.name, value: v.value, at: `${file}:${v.line} (EnvironmentFile=)` });
  }
  return { ok: true, found };
}

/**
 * The variables the unit's `UnsetEnvironment=` removes by name (the unit and its drop-ins in order;
 * an empty assignment resets the list). systemd applies it last, over every source: the unit's own
 * assignments and the service manager's environment, the runtime one (`systemctl set-environment`,
 * in PID 1's memory, which check cannot read) included. A `VAR=VALUE` word removes only that exact
 * assignment and says nothing of another value, so it does not count.
 */
export function unsetByName(s: IniSettings): { ok: true; names: Set<string> } | { ok: false; reason: string } {
  let names = new Set<string>();
  for (const a of s.all('Service', 'UnsetEnvironment')) {
    const words = environmentWords(a.value);
    if (!words) return { ok: false, reason: `UnsetEnvironment=${a.value} at ${a.file}:${a.line}: a quote or escape systemd rejects; check cannot tell which variables it removes` };
    if (words.length === 0) names = new Set();
    for (const w of words) if (!w.includes('=')) names.add(w);
  }
  return { ok: true, names };
}

/** Where the service manager's runtime environment comes in, for the reasons of unit.preload and unit.environment. */
export const RUNTIME_ENVIRONMENT = "the service manager's runtime environment (systemctl set-environment, in PID 1's memory, which check cannot read)";

// ---- unit.environment: no variable that makes node or its loaders run other code ----

/**
 * Variables that make the server load code or configuration beyond its unit and its tree (which
 * unit.files and unit.preload vouch for): node's options (`--require`, `--import`, `--openssl-config`
 * …) and module path, the dynamic loader's library path and audit libraries, and OpenSSL's
 * configuration, which can load providers and engines. The appliance needs none of them; a flag the
 * server needs belongs on ExecStart, which unit.files protects.
 */
const CODE_VARIABLES: ReadonlySet<string> = new Set(['NODE_OPTIONS', 'NODE_PATH', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'OPENSSL_CONF', 'OPENSSL_MODULES', 'OPENSSL_ENGINES']);

/** unit.environment: none of {@link CODE_VARIABLES} set for the service, nor passed through from the manager. */
export async function judgeEnvironment(s: IniSettings, ctx: CheckContext): Promise<ControlResult> {
  const read = await serviceEnvironment(s, ctx.host, (name) => CODE_VARIABLES.has(name));
  if (!read.ok) return fail(read.reason);
  // An empty value sets nothing that loads code (node, ld.so and OpenSSL read it as unset).
  const set = read.found.find((a) => a.value !== '');
  if (set) return fail(`${set.name}=${set.value} at ${set.at}: ${set.name} makes the server load code or configuration check cannot vouch for; put what the server needs on ExecStart`);
  for (const a of s.all('Service', 'PassEnvironment')) {
    const passed = (environmentWords(a.value) ?? a.value.split(/\s+/)).find((name) => CODE_VARIABLES.has(name));
    if (passed) return fail(`PassEnvironment=${a.value} at ${a.file}:${a.line} passes ${passed} from the service manager's own environment, which check cannot read`);
  }
  const unset = unsetByName(s);
  if (!unset.ok) return fail(unset.reason);
  const open = [...CODE_VARIABLES].filter((name) => !unset.names.has(name));
  if (open.length > 0) return fail(`UnsetEnvironment= does not name ${open.join(', ')}: ${RUNTIME_ENVIRONMENT} could pass ${open.length === 1 ? 'it' : 'them'} to the server; re-run apply`);
  return pass(
    `none of ${[...CODE_VARIABLES].join(', ')} is set for the service (system.conf's DefaultEnvironment=, the unit's Environment=, its environment files) or passed to it (PassEnvironment=), ` +
      `and UnsetEnvironment= removes each from whatever ${RUNTIME_ENVIRONMENT} holds`,
  );
}
