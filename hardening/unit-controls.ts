/**
 * Controls `unit.*`: the sigil-server systemd unit exists and carries the sandbox issue 7 asks for.
 * The unit is read with every drop-in systemd applies to it (see {@link dropInDirs}), because a
 * drop-in can undo any directive of the main file.
 */
import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { coveredBy, LOOPBACK, parseCidr, type Cidr } from './cidr.js';
import { fail, pass, type CheckContext, type Control, type ControlResult } from './control.js';
import { changeableByOthers, isMissing, type Host } from './host.js';
import { firstFile, iniBoolean, loadIniWithDropIns, readIniFiles, SYSTEMD_CONF_DIRS, type IniAssignment, type IniSettings } from './ini-file.js';
import { environmentWords, parseEnvFile } from './systemd-env.js';

/** Name of the unit. */
export const UNIT_NAME = 'sigil-server.service';
/** The service user that owns /var/lib/sigil. */
export const SERVICE_USER = 'sigil';

/**
 * The system manager's unit search path, most important first (systemd.unit(5), and
 * `systemd-analyze unit-paths` on Debian 12). `systemctl set-property` writes to the `.control`
 * directories, portable services attach to the `.attached` ones. Debian builds systemd for a split
 * /usr, so /lib comes before /usr/lib; on a merged /usr they are one directory.
 */
const UNIT_PATH = [
  '/etc/systemd/system.control',
  '/run/systemd/system.control',
  '/run/systemd/transient',
  '/run/systemd/generator.early',
  '/etc/systemd/system',
  '/etc/systemd/system.attached',
  '/run/systemd/system',
  '/run/systemd/system.attached',
  '/run/systemd/generator',
  '/usr/local/lib/systemd/system',
  '/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/run/systemd/generator.late',
];

/** Address families the server needs: TCP/IP and local sockets. */
const ALLOWED_FAMILIES = new Set(['AF_INET', 'AF_INET6', 'AF_UNIX']);

type LoadedUnit = { ok: true; files: string[]; s: IniSettings } | { ok: false; reason: string };
const cache = new WeakMap<CheckContext, Promise<LoadedUnit>>();

async function loadUnit(ctx: CheckContext): Promise<LoadedUnit> {
  const fragment = await findFragment(ctx.host);
  if (!fragment) return { ok: false, reason: `${UNIT_NAME} not found in ${UNIT_PATH.join(', ')}` };
  if (fragment.masked) return { ok: false, reason: `${UNIT_NAME} is masked (${fragment.path} is empty or linked to /dev/null)` };
  const dirs = dropInDirs([UNIT_NAME, ...(await aliasesOf(ctx.host))]);
  const dropIns = await ctx.host.confDirFiles(dirs);
  return { ok: true, files: [fragment.path, ...dropIns], s: await readIniFiles(ctx.host, { file: fragment.path, text: fragment.text }, dropIns) };
}

/**
 * The unit file systemd loads: the first on the search path. It is masked when that file is empty or
 * a link to /dev/null (systemd's null_or_empty()), even if a lower directory holds the real unit.
 */
async function findFragment(host: Host): Promise<{ path: string; text: string; masked: boolean } | undefined> {
  for (const dir of UNIT_PATH) {
    const path = `${dir}/${UNIT_NAME}`;
    if ((await host.linkTarget(path)) === '/dev/null') return { path, text: '', masked: true };
    const text = await host.readText(path);
    if (text !== undefined) return { path, text, masked: text === '' };
  }
  return undefined;
}

/**
 * Other names of the unit: a `*.service` link on the search path to sigil-server.service (what
 * `Alias=` makes). systemd applies the drop-ins of those names too. Only the first file of a name
 * counts, as in systemd's unit name map.
 */
async function aliasesOf(host: Host): Promise<string[]> {
  const first = new Map<string, string>();
  for (const dir of UNIT_PATH) {
    for (const name of await host.list(dir)) {
      if (name.endsWith('.service') && name !== UNIT_NAME && !first.has(name)) first.set(name, `${dir}/${name}`);
    }
  }
  const aliases: string[] = [];
  for (const [name, path] of first) {
    const target = await host.linkTarget(path);
    if (target !== undefined && basename(target) === UNIT_NAME) aliases.push(name);
  }
  return aliases.sort();
}

/**
 * The drop-in directories systemd reads for a unit, in its order (unit_file_find_dropin_paths()):
 * for each name (the unit's own, then its aliases) and each directory of the search path, `<name>.d`
 * then the prefix directories of a dashed name (`sigil-.service.d`); last, the top-level
 * `service.d` of every directory. A drop-in file name found in an earlier directory of this list
 * hides the same name in a later one, so `/usr/lib/…/sigil-server.service.d/10-x.conf` hides
 * `/etc/systemd/system/service.d/10-x.conf` (checked against systemd 252). The files are then
 * applied in the order of their names, whatever their directory.
 */
function dropInDirs(names: readonly string[], type = 'service'): string[] {
  const dirs: string[] = [];
  for (const name of names) {
    for (const dir of UNIT_PATH) dirs.push(...[name, ...prefixNames(name, type)].map((n) => `${dir}/${n}.d`));
  }
  for (const dir of UNIT_PATH) dirs.push(`${dir}/${type}.d`);
  return dirs;
}

/**
 * The names a dashed unit name is cut down to, after each dash from the right: `a-b-c.service` →
 * `a-b-.service`, `a-.service` (systemd.unit(5)). A leading dash does not count.
 */
function prefixNames(name: string, type = 'service'): string[] {
  const stem = name.slice(0, -`.${type}`.length);
  const names: string[] = [];
  for (let i = stem.length - 2; i > 0; i--) if (stem[i] === '-') names.push(`${stem.slice(0, i + 1)}.${type}`);
  return names;
}

/**
 * The slices the service runs in, innermost first: its `Slice=` (default system.slice), then each
 * parent its dashed name encodes (`a-b.slice` → `a.slice`), then the root `-.slice`
 * (systemd.slice(5)).
 */
function sliceChain(s: IniSettings): string[] {
  const own = s.last('Service', 'Slice')?.value || 'system.slice';
  const chain = [own];
  const stem = own === '-.slice' ? '' : own.slice(0, -'.slice'.length);
  for (let i = stem.length - 1; i > 0; i--) if (stem[i] === '-') chain.push(`${stem.slice(0, i)}.slice`);
  if (own !== '-.slice') chain.push('-.slice');
  return chain;
}

/**
 * The `[Slice]` settings of each slice of {@link sliceChain}: its unit file (the first on the search
 * path; a slice without one, like a built-in system.slice, has only its drop-ins) and drop-ins.
 */
async function loadSlices(host: Host, s: IniSettings): Promise<{ name: string; s: IniSettings; files: string[] }[]> {
  const out: { name: string; s: IniSettings; files: string[] }[] = [];
  for (const name of sliceChain(s)) {
    const main = await firstFile(host, UNIT_PATH, name);
    const dropIns = await host.confDirFiles(dropInDirs([name], 'slice'));
    out.push({ name, s: await readIniFiles(host, main, dropIns), files: main ? [main.file, ...dropIns] : dropIns });
  }
  return out;
}

/** The `Exec*=` settings besides ExecStart= (systemd.service(5)): each runs commands of its own. */
const OTHER_EXEC_KEYS = ['ExecCondition', 'ExecStartPre', 'ExecStartPost', 'ExecReload', 'ExecStop', 'ExecStopPost'];

/** One command of an `Exec*=` assignment, with where it was set. */
interface ExecCommand {
  readonly key: string;
  readonly command: string;
  readonly at: string;
}

/** The commands of one assignment: a lone `;` word separates them (`\;` is a literal argument). */
function commandsOf(a: IniAssignment): ExecCommand[] {
  const commands = a.value.split(/\s+;(?=\s|$)/).map((c) => c.trim()).filter(Boolean);
  return commands.map((command) => ({ key: a.key, command, at: `${a.file}:${a.line}` }));
}

/** The commands of an `Exec*=` setting in effect: assignments accumulate, an empty one resets. */
function execCommands(s: IniSettings, key: string): ExecCommand[] {
  let out: ExecCommand[] = [];
  for (const a of s.all('Service', key)) out = a.value === '' ? [] : [...out, ...commandsOf(a)];
  return out;
}

/**
 * The prefixes systemd reads in front of the executable (systemd.service(5), "Command lines"):
 * `-` ignore failure, `@` argv[0] apart, `:` no variable expansion, `+` full privileges and no
 * sandbox, `!` no User=/Group=, `!!` the same where the kernel lacks ambient capabilities.
 */
const execPrefixes = (command: string): string => /^[-@:+!]*/.exec(command)?.[0] ?? '';

/**
 * A command check can judge: prefixes, then an absolute path, and no quote, backslash or `%`
 * anywhere. systemd unquotes and unescapes the first word before it reads the prefixes
 * (`"+/usr/bin/node"`, `\x2b/usr/bin/node` are `+`), and a command it rejects (bad quoting, escape
 * or specifier, a relative path) stops its reading of the file, losing the drop-in's later lines.
 * apply renders only paths of [A-Za-z0-9._/-].
 */
const isPlainCommand = (command: string): boolean => /^[-@:+!]*\/[^"'\\%]*$/.test(command);

/**
 * Why a command escapes User= or the sandbox, or undefined when it does not. `-` and `@` change
 * nothing the sandbox depends on, and `:` only leaves `$VAR` in the arguments unexpanded, which can
 * add nothing to the command: those pass.
 */
function privilegeEscape(command: string): string | undefined {
  const prefixes = execPrefixes(command);
  if (prefixes.includes('+')) return 'the "+" prefix runs it with full privileges and no sandbox';
  if (prefixes.includes('!!')) return 'the "!!" prefix runs it as root on a kernel without ambient capabilities';
  if (prefixes.includes('!')) return 'the "!" prefix runs it as root, ignoring User=';
  return undefined;
}

/** unit.present: one ExecStart command that runs the server, and no Exec*= command that escapes. */
function judgeExec(s: IniSettings, files: string[]): ControlResult {
  const start = execCommands(s, 'ExecStart');
  if (start.length === 0) return fail('the unit has no ExecStart=');
  // systemd refuses a second command unless Type=oneshot, which then runs them all.
  if (start.length > 1) return fail(`ExecStart= has ${start.length} commands (${start.map((c) => c.at).join(', ')}), expected one`);
  if (!/\bdist\/server\/main\.js\s+start\b/.test(start[0].command)) {
    return fail(`ExecStart= does not run dist/server/main.js start: "${start[0].command}"`);
  }
  // Every assignment, also those reset later: a rejected one ends the file before its reset.
  const keys = ['ExecStart', ...OTHER_EXEC_KEYS];
  const written = keys.flatMap((key) => s.all('Service', key).flatMap(commandsOf));
  const unplain = written.find((c) => !isPlainCommand(c.command));
  if (unplain) {
    return fail(`${unplain.key}=${unplain.command} at ${unplain.at}: not a plain absolute path without quotes, escapes or % specifiers, so check cannot judge its prefixes (and systemd stops reading the file at a command it rejects)`);
  }
  for (const c of keys.flatMap((key) => execCommands(s, key))) {
    const escape = privilegeEscape(c.command);
    if (escape) return fail(`${c.key}=${c.command} at ${c.at}: ${escape}`);
  }
  // The deprecated PermissionsStartOnly=yes gives every Exec*= but ExecStart= the "+" prefix. A value
  // that is not a boolean fails too: systemd ignores it and keeps an earlier yes.
  const permissions = s.last('Service', 'PermissionsStartOnly');
  if (permissions && iniBoolean(permissions.value) !== false) {
    return fail(`PermissionsStartOnly=${permissions.value} at ${permissions.file}:${permissions.line} is not off: on, it runs the other Exec*= commands with full privileges`);
  }
  return pass(`found ${files.join(' + ')}`);
}

/** Settings naming users or groups: systemd rejects a bad name as fatal, and stops reading the file. */
const CREDENTIAL_KEYS = ['User', 'Group', 'SupplementaryGroups'];

/**
 * A name systemd rejects (valid_user_group_name() in its relaxed mode: padded, control characters,
 * `:` or `/`, `.`/`..`, a number that is no UID), or one with a `%` specifier, which check does not
 * expand (`%u` is root).
 */
function isBadName(name: string): boolean {
  if (/^[0-9]+$/.test(name)) return Number(name) > 4294967294 || Number(name) === 65535;
  return /%|^ | $|[\x00-\x1f\x7f:/]|^-[0-9]+$|^\.\.?$/.test(name);
}

/** The first user or group assignment systemd would reject, anywhere in the unit and its drop-ins. */
function badCredential(s: IniSettings): IniAssignment | undefined {
  return CREDENTIAL_KEYS.flatMap((key) => s.all('Service', key)).find((a) => {
    if (a.key !== 'SupplementaryGroups') return a.value !== '' && isBadName(a.value);
    // A list: check does not unquote it, so quotes and backslashes count as bad too.
    return a.value.split(/[ \t]+/).some((name) => name !== '' && (isBadName(name) || /["'\\]/.test(name)));
  });
}

/** unit.user: `+` or a single `!` on ExecStart= runs the server as root whatever User= says. */
function judgeUser(s: IniSettings): ControlResult {
  for (const c of execCommands(s, 'ExecStart')) {
    const prefixes = execPrefixes(c.command);
    if (prefixes.includes('+') || (prefixes.includes('!') && !prefixes.includes('!!'))) {
      return fail(`ExecStart=${c.command} at ${c.at} runs the server as root: its "${prefixes}" prefix overrides User=`);
    }
  }
  const bad = badCredential(s);
  if (bad) {
    return fail(`${bad.key}=${bad.value} at ${bad.file}:${bad.line} is not a name systemd accepts (or has a % specifier): systemd stops reading the file there`);
  }
  const user = s.last('Service', 'User');
  if (!user) return fail('User= is not set: the service would run as root');
  return user.value === SERVICE_USER
    ? pass(`User=${user.value}`)
    : fail(`User=${user.value} at ${user.file}:${user.line}, expected ${SERVICE_USER}`);
}

function unitControl(
  id: string,
  title: string,
  judge: (s: IniSettings, ctx: CheckContext, files: string[]) => ControlResult | Promise<ControlResult>,
): Control {
  return {
    id,
    title,
    async check(ctx) {
      let loading = cache.get(ctx);
      if (!loading) cache.set(ctx, (loading = loadUnit(ctx)));
      const unit = await loading;
      return unit.ok ? await judge(unit.s, ctx, unit.files) : fail(unit.reason);
    },
  };
}

/** A boolean `[Service]` directive that must be true. */
function mustBeTrue(id: string, key: string, title: string): Control {
  return unitControl(id, title, (s) => {
    const a = s.last('Service', key);
    if (!a) return fail(`${key}= is not set (systemd's default is off)`);
    return iniBoolean(a.value) === true
      ? pass(`${key}=${a.value} (${a.file}:${a.line})`)
      : fail(`${key}=${a.value} at ${a.file}:${a.line}, expected yes`);
  });
}

/** systemd's address keywords in IPAddressAllow=/IPAddressDeny= (systemd.resource-control(5)). */
const IP_KEYWORDS: Record<string, string[]> = {
  any: ['0.0.0.0/0', '::/0'],
  localhost: ['127.0.0.0/8', '::1/128'],
  'link-local': ['169.254.0.0/16', 'fe80::/64'],
  multicast: ['224.0.0.0/4', 'ff00::/8'],
};

function ipItems(items: string[]): { cidrs: Cidr[]; bad: string[] } {
  const cidrs: Cidr[] = [];
  const bad: string[] = [];
  for (const item of items) {
    for (const text of IP_KEYWORDS[item] ?? [item]) {
      try {
        cidrs.push(parseCidr(text));
      } catch {
        bad.push(item);
      }
    }
  }
  return { cidrs, bad };
}

// ---- unit.preload: a library preloaded into the server (jemalloc) is one only root can change ----

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
function environmentFiles(s: IniSettings): { value: string; at: string; file: string | undefined }[] {
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
async function serviceEnvironment(s: IniSettings, host: Host, wanted: (name: string) => boolean): Promise<{ ok: true; found: Assignment[] } | { ok: false; reason: string }> {
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
function unsetByName(s: IniSettings): { ok: true; names: Set<string> } | { ok: false; reason: string } {
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
const RUNTIME_ENVIRONMENT = "the service manager's runtime environment (systemctl set-environment, in PID 1's memory, which check cannot read)";

const isJemalloc = (lib: string): boolean => /\/libjemalloc\.so[^/]*$/.test(lib);

const RUNS_IN_SERVER = 'whoever can change a preloaded library runs code in the server, which holds the vault keys';

/** What {@link judgePath} found at a path: whether it exists, and why someone other than root could change it. */
type PathVerdict = { readonly missing: true; readonly why?: string } | { readonly missing: false; readonly path: string; readonly st: Stats; readonly why?: string };

/**
 * Who besides root could put something else at `hostPath`: the file itself, and every directory a
 * name of its path is looked up in (links followed inside the root) — whoever can write one of those
 * can put another file, or a link, under that name, even where nothing is yet.
 */
async function judgePath(host: Host, hostPath: string): Promise<PathVerdict> {
  let under: string | undefined;
  const path = await host.walk(hostPath, {
    lookIn: async (dir) => {
      const why = under === undefined ? changeableByOthers(await stat(dir)) : undefined;
      if (why) under = `is under /${relative(host.root, dir)}, which is ${why}`;
    },
  });
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (err) {
    if (isMissing(err)) return under === undefined ? { missing: true } : { missing: true, why: under };
    throw err;
  }
  const own = changeableByOthers(st);
  const why = under ?? (own && `is ${own}`);
  return why === undefined ? { missing: false, path, st } : { missing: false, path, st, why };
}

/**
 * Why the library at `hostPath` is unsafe to preload, or undefined when only root can change it:
 * it and every directory a name of its path is looked up in (links followed inside the root).
 */
async function unsafeLibrary(host: Host, hostPath: string): Promise<string | undefined> {
  const v = await judgePath(host, hostPath);
  if (v.why) return `${v.why}: ${RUNS_IN_SERVER}`;
  if (v.missing) return 'does not exist: the loader would skip it, so it names no library check can vouch for';
  return v.st.isFile() ? undefined : 'is not a regular file';
}

/** The system-wide preload list (ld.so(8)): loaded into every program, the server too. */
const LD_SO_PRELOAD = '/etc/ld.so.preload';

/** Why one preload entry is unsafe, or undefined. */
async function unsafeEntry(host: Host, lib: string): Promise<string | undefined> {
  if (!lib.startsWith('/')) return 'is not an absolute path: the loader would search its library path for it';
  if (lib.includes('$')) return 'has a $ token ($LIB, $PLATFORM, $ORIGIN) the loader expands, which check does not';
  return unsafeLibrary(host, lib);
}

/** unit.preload: every library in every LD_PRELOAD is an absolute path to a file only root can change. */
async function judgePreload(s: IniSettings, ctx: CheckContext): Promise<ControlResult> {
  const host = ctx.host;
  const read = await serviceEnvironment(s, host, (name) => name === 'LD_PRELOAD');
  if (!read.ok) return fail(read.reason);
  // Every one is judged, also one UnsetEnvironment= removes: a path only others control has no place in the unit.
  const viaEnv: string[] = [];
  for (const p of read.found) {
    // The loader splits LD_PRELOAD at spaces and colons, and skips empty entries.
    for (const lib of p.value.split(/[ :]/).filter(Boolean)) {
      const why = await unsafeEntry(host, lib);
      if (why) return fail(`LD_PRELOAD=${p.value} at ${p.at}: ${lib} ${why}`);
      viaEnv.push(`${lib}${isJemalloc(lib) ? ' (jemalloc)' : ''} at ${p.at}`);
    }
  }
  const viaSystem: string[] = [];
  // ld.so.preload adds to LD_PRELOAD for every program; the list itself is code the server runs.
  const system = await host.readText(LD_SO_PRELOAD);
  if (system !== undefined) {
    const listWhy = await unsafeLibrary(host, LD_SO_PRELOAD);
    if (listWhy) return fail(`${LD_SO_PRELOAD} ${listWhy.replace('a preloaded library', 'the preload list')}`);
    // glibc's rtld splits it at blanks, newlines and colons.
    for (const lib of system.split(/[\s:]+/).filter(Boolean)) {
      const why = await unsafeEntry(host, lib);
      if (why) return fail(`${LD_SO_PRELOAD}: ${lib} ${why}`);
      viaSystem.push(`${lib} at ${LD_SO_PRELOAD}`);
    }
  }
  // Without an LD_PRELOAD of the unit's own (Environment=, EnvironmentFile=), or its removal, one
  // set at runtime in the manager's environment would reach the server unseen.
  const unset = unsetByName(s);
  if (!unset.ok) return fail(unset.reason);
  const removed = unset.names.has('LD_PRELOAD');
  if (!removed && !read.found.some((a) => !a.manager)) {
    return fail(`the unit neither sets LD_PRELOAD nor names it in UnsetEnvironment=: one in ${RUNTIME_ENVIRONMENT} would reach the server; re-run apply`);
  }
  // The conf's SIGIL_ALLOCATOR says what apply was asked to render (auto: either is correct), held
  // to the LD_PRELOAD in effect: the last one read (EnvironmentFile= overrides Environment=), or
  // none when UnsetEnvironment= removes it.
  const effective = removed ? [] : (read.found.at(-1)?.value ?? '').split(/[ :]/).filter(Boolean);
  if (ctx.conf?.allocator === 'jemalloc' && !effective.some(isJemalloc)) return fail('SIGIL_ALLOCATOR=jemalloc, but the unit preloads no jemalloc: re-run apply');
  if (ctx.conf?.allocator === 'glibc' && effective.length > 0) return fail(`SIGIL_ALLOCATOR=glibc, but the unit preloads ${effective.join(', ')}: re-run apply`);
  // ld.so.preload is the loader's, not the environment's: UnsetEnvironment= does not reach it.
  const loaded = [...(removed ? [] : viaEnv), ...viaSystem];
  const note = removed ? ` (UnsetEnvironment=LD_PRELOAD keeps out any other${viaEnv.length > 0 ? `, ${viaEnv.join(', ')} included` : ''})` : '';
  if (loaded.length === 0) return pass(`no preloaded library: glibc malloc${note}`);
  return pass(`preloaded ${loaded.join(', ')}: each a regular file only root can change, in directories only root can change${note}`);
}

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
async function judgeEnvironment(s: IniSettings, ctx: CheckContext): Promise<ControlResult> {
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

// ---- unit.files: only root can change what the service is and what it runs ----

const DECIDES_SERVER = 'whoever can change it decides what the server runs, with the vault keys';

/** The executables of every `Exec*=` command in effect, and ExecStart's script (dist/server/main.js), with where each was set. */
function programPaths(s: IniSettings): { path: string; at: string }[] {
  const out: { path: string; at: string }[] = [];
  for (const key of ['ExecStart', ...OTHER_EXEC_KEYS]) {
    for (const c of execCommands(s, key)) {
      const words = c.command.slice(execPrefixes(c.command).length).split(/\s+/).filter(Boolean);
      const [exe] = words;
      if (exe?.startsWith('/')) out.push({ path: exe, at: `${key}= at ${c.at}` });
      const script = words.find((w) => /^\/.*\/dist\/server\/main\.js$/.test(w));
      if (key === 'ExecStart' && script) out.push({ path: script, at: `${key}= at ${c.at}` });
    }
  }
  return out;
}

/**
 * The first entry under `dir` (a directory on this machine) that someone other than root could
 * change, as a host path with the reason. Links are not followed (their own mode means nothing; what
 * they point at inside the tree is scanned where it lies).
 */
async function firstChangeableUnder(host: Host, dir: string): Promise<string | undefined> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  for (const e of entries) {
    if (e.isSymbolicLink()) continue;
    const path = join(dir, e.name);
    const why = changeableByOthers(await lstat(path));
    if (why) return `/${relative(host.root, path)} is ${why}`;
    if (e.isDirectory()) {
      const below = await firstChangeableUnder(host, path);
      if (below) return below;
    }
  }
  return undefined;
}

/**
 * unit.files: the unit and its drop-ins, its environment files (missing ones included: whoever can
 * write their directory can create one), the programs its Exec*= lines start and the tree ExecStart's
 * script lives in are root's alone; an environment file that holds the master passphrase is
 * readable by root alone.
 */
async function judgeFiles(s: IniSettings, ctx: CheckContext, files: string[]): Promise<ControlResult> {
  const host = ctx.host;
  for (const file of files) {
    const v = await judgePath(host, file);
    if (v.why) return fail(`${file} ${v.why}: ${DECIDES_SERVER}`);
  }
  let envFilesJudged = 0;
  for (const e of environmentFiles(s)) {
    const path = e.file;
    if (path === undefined) continue; // unit.preload fails a path check cannot expand
    const v = await judgePath(host, path);
    if (v.why) return fail(`EnvironmentFile=${e.value} at ${e.at}: ${path} ${v.why}: ${DECIDES_SERVER} (NODE_OPTIONS, LD_PRELOAD)`);
    if (v.missing) continue;
    envFilesJudged++;
    const text = await host.readText(path);
    const secret = text !== undefined && parseEnvFile(text).some((e) => e.name === 'SIGIL_MASTER_PASSPHRASE');
    if (secret && (v.st.mode & 0o044) !== 0) {
      return fail(`EnvironmentFile=${e.value} at ${e.at}: ${path} holds SIGIL_MASTER_PASSPHRASE and is readable by group or others (mode ${(v.st.mode & 0o7777).toString(8).padStart(4, '0')}), expected 0600`);
    }
  }
  const programs = programPaths(s);
  for (const p of programs) {
    const v = await judgePath(host, p.path);
    if (v.why) return fail(`${p.at}: ${p.path} ${v.why}: ${DECIDES_SERVER}`);
  }
  const script = programs.find((p) => p.path.endsWith('/dist/server/main.js'));
  if (script) {
    // The whole installed tree (dist/, node_modules/, package.json) is code the server loads.
    const prefix = script.path.slice(0, -'/dist/server/main.js'.length) || '/';
    const v = await judgePath(host, prefix);
    if (!v.missing) {
      const why = await firstChangeableUnder(host, v.path);
      if (why) return fail(`${why}, in the program tree of ${script.at}: ${DECIDES_SERVER}`);
    }
  }
  return pass(
    `${files.length} unit file(s), ${envFilesJudged} environment file(s) and ${programs.length} program path(s)${script ? ' with their tree' : ''}: root's alone`,
  );
}

/** The `unit.*` controls, in report order. */
export const UNIT_CONTROLS: readonly Control[] = [
  unitControl('unit.present', 'sigil-server.service is installed', (s, _ctx, files) => judgeExec(s, files)),
  unitControl('unit.files', 'only root can change the unit, its environment files and the program it runs', async (s, ctx, files) =>
    // The slices' files too: their IPAddressAllow= reaches the service (unit.ip-address-policy).
    judgeFiles(s, ctx, [...files, ...(await loadSlices(ctx.host, s)).flatMap((x) => x.files)]),
  ),
  unitControl('unit.user', 'runs as the dedicated user sigil', (s) => judgeUser(s)),
  unitControl('unit.protect-system', 'ProtectSystem=strict', (s) => {
    const a = s.last('Service', 'ProtectSystem');
    if (!a) return fail('ProtectSystem= is not set: the whole file system is writable');
    return a.value === 'strict' ? pass('ProtectSystem=strict') : fail(`ProtectSystem=${a.value} at ${a.file}:${a.line}, expected strict`);
  }),
  unitControl('unit.protect-home', 'ProtectHome=yes', (s) => {
    const a = s.last('Service', 'ProtectHome');
    if (!a) return fail('ProtectHome= is not set: /home, /root and /run/user are visible');
    return iniBoolean(a.value) === true || a.value === 'tmpfs'
      ? pass(`ProtectHome=${a.value}`)
      : fail(`ProtectHome=${a.value} at ${a.file}:${a.line}, expected yes`);
  }),
  mustBeTrue('unit.private-tmp', 'PrivateTmp', 'PrivateTmp=yes'),
  mustBeTrue('unit.private-devices', 'PrivateDevices', 'PrivateDevices=yes'),
  mustBeTrue('unit.no-new-privileges', 'NoNewPrivileges', 'NoNewPrivileges=yes'),
  unitControl('unit.capabilities', 'empty capability bounding and ambient sets', (s) => {
    const bounding = s.list('Service', 'CapabilityBoundingSet');
    if (bounding === undefined) return fail('CapabilityBoundingSet= is not set: the bounding set is every capability');
    if (bounding.length > 0) return fail(`CapabilityBoundingSet keeps ${bounding.join(' ')} (${s.where('Service', 'CapabilityBoundingSet')})`);
    const ambient = s.list('Service', 'AmbientCapabilities') ?? [];
    if (ambient.length > 0) return fail(`AmbientCapabilities grants ${ambient.join(' ')} (${s.where('Service', 'AmbientCapabilities')})`);
    return pass('CapabilityBoundingSet= (empty), no ambient capabilities');
  }),
  unitControl('unit.restrict-address-families', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX', (s) => {
    const all = s.all('Service', 'RestrictAddressFamilies');
    if (all.length === 0) return fail('RestrictAddressFamilies= is not set: every socket family is allowed');
    // systemd: an empty assignment resets; the first assignment after it decides allow- or deny-list;
    // later `~` assignments remove from an allow-list.
    let allowed: Set<string> | undefined;
    let denyList = false;
    for (const a of all) {
      if (a.value === '') {
        allowed = undefined;
        denyList = false;
        continue;
      }
      const invert = a.value.startsWith('~');
      const families = a.value.replace(/^~/, '').split(/\s+/).filter(Boolean);
      if (allowed === undefined && !denyList) {
        if (invert) denyList = true;
        else allowed = new Set(families);
      } else if (allowed) {
        for (const f of families) invert ? allowed.delete(f) : allowed.add(f);
      }
    }
    if (denyList || allowed === undefined) return fail(`RestrictAddressFamilies is a deny-list or reset (${s.where('Service', 'RestrictAddressFamilies')}); expected an allow-list`);
    const extra = [...allowed].filter((f) => !ALLOWED_FAMILIES.has(f));
    if (extra.length > 0) return fail(`RestrictAddressFamilies also allows ${extra.join(' ')}; expected only ${[...ALLOWED_FAMILIES].join(' ')}`);
    if (allowed.size === 0) return fail('RestrictAddressFamilies allows nothing: the server cannot listen');
    return pass(`RestrictAddressFamilies=${[...allowed].join(' ')}`);
  }),
  unitControl('unit.ip-address-policy', 'IPAddressDeny=any, IPAddressAllow= loopback and the LAN ranges only', async (s, ctx) => {
    if (!ctx.conf) return fail(`cannot judge IPAddressAllow without the configuration: ${ctx.confError}`);
    const deny = s.list('Service', 'IPAddressDeny') ?? [];
    const denied = ipItems(deny).cidrs;
    const any = ipItems(['any']).cidrs;
    if (!any.every((a) => denied.some((d) => d.prefix === 0 && d.family === a.family))) {
      return fail(`IPAddressDeny is "${deny.join(' ')}", expected any`);
    }
    const allowItems = s.list('Service', 'IPAddressAllow') ?? [];
    const { cidrs: allow, bad } = ipItems(allowItems);
    if (bad.length > 0) return fail(`IPAddressAllow has entries that are not addresses: ${bad.join(' ')}`);
    const permitted = [...LOOPBACK, ...ctx.conf.lanRanges];
    const outside = allow.filter((c) => !coveredBy(c, permitted));
    if (outside.length > 0) return fail(`IPAddressAllow lets in ${outside.map((c) => c.text).join(' ')}, outside loopback and SIGIL_LAN_RANGES`);
    // systemd merges the allow lists of every parent slice into the service's own filter
    // (bpf-firewall.c walks the unit and its slices), and an allowed address beats IPAddressDeny=any:
    // a slice's IPAddressAllow= opens the service as surely as its own.
    const slices = await loadSlices(ctx.host, s);
    for (const slice of slices) {
      const items = slice.s.list('Slice', 'IPAddressAllow') ?? [];
      const parsed = ipItems(items);
      const where = slice.s.where('Slice', 'IPAddressAllow');
      if (parsed.bad.length > 0) return fail(`IPAddressAllow of ${slice.name} (${where}) has entries that are not addresses: ${parsed.bad.join(' ')}`);
      const wider = parsed.cidrs.filter((c) => !coveredBy(c, permitted));
      if (wider.length > 0) return fail(`IPAddressAllow of ${slice.name} (${where}) lets in ${wider.map((c) => c.text).join(' ')}, outside loopback and SIGIL_LAN_RANGES: systemd adds a parent slice's allow list to the service's`);
      allow.push(...parsed.cidrs);
    }
    const missing = [...LOOPBACK, ...ctx.conf.lanRanges].filter((c) => !coveredBy(c, allow));
    if (missing.length > 0) return fail(`IPAddressAllow misses ${missing.map((c) => c.text).join(' ')}`);
    return pass(`IPAddressDeny=any, IPAddressAllow=${allowItems.join(' ')}; the slices it runs in (${slices.map((x) => x.name).join(', ')}) allow nothing more`);
  }),
  unitControl('unit.memory-deny-write-execute', 'MemoryDenyWriteExecute only with node --jitless', (s) => {
    const a = s.last('Service', 'MemoryDenyWriteExecute');
    const exec = s.last('Service', 'ExecStart')?.value ?? '';
    const jitless = /(^|\s)--jitless(\s|$)/.test(exec);
    if (a && iniBoolean(a.value) === true) {
      return jitless
        ? pass('MemoryDenyWriteExecute=yes with node --jitless')
        : fail(`MemoryDenyWriteExecute=yes (${a.file}:${a.line}) without node --jitless: V8's JIT needs W+X memory, node would abort`);
    }
    return jitless
      ? fail('node runs --jitless but MemoryDenyWriteExecute is off: set it, W^X costs nothing more then')
      : pass("off by design: V8's JIT needs W+X memory, and node 20 --jitless cannot run the server (no WebAssembly for undici)");
  }),
  unitControl('unit.limit-core', 'LimitCORE=0', (s) => {
    const a = s.last('Service', 'LimitCORE');
    if (!a) return fail('LimitCORE= is not set: the service inherits the core limit');
    return a.value === '0' || a.value === '0:0'
      ? pass(`LimitCORE=${a.value}`)
      : fail(`LimitCORE=${a.value} at ${a.file}:${a.line}, expected 0`);
  }),
  unitControl('unit.preload', 'a preloaded library (LD_PRELOAD) only root can change', (s, ctx) => judgePreload(s, ctx)),
  unitControl('unit.environment', 'no NODE_OPTIONS, NODE_PATH, LD_LIBRARY_PATH, LD_AUDIT or OPENSSL_CONF for the service, from any source', (s, ctx) => judgeEnvironment(s, ctx)),
];
