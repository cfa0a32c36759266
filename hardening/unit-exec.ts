/**
 * The commands the service runs: the `Exec*=` settings as systemd reads them (assignments, `;`
 * separators, resets, the prefixes in front of the executable), unit.present's judgement of them,
 * and the program paths they start. Kept in one place because a prefix (`+`, `!`) undoes User= and
 * the whole sandbox for its command: unit.present, unit.user and unit.files must all read the
 * commands the same way systemd does.
 */
import { fail, pass, type ControlResult } from './control.js';
import { iniBoolean, type IniAssignment, type IniSettings } from './ini-file.js';

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
export function execCommands(s: IniSettings, key: string): ExecCommand[] {
  let out: ExecCommand[] = [];
  for (const a of s.all('Service', key)) out = a.value === '' ? [] : [...out, ...commandsOf(a)];
  return out;
}

/**
 * The prefixes systemd reads in front of the executable (systemd.service(5), "Command lines"):
 * `-` ignore failure, `@` argv[0] apart, `:` no variable expansion, `+` full privileges and no
 * sandbox, `!` no User=/Group=, `!!` the same where the kernel lacks ambient capabilities.
 */
export const execPrefixes = (command: string): string => /^[-@:+!]*/.exec(command)?.[0] ?? '';

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
export function judgeExec(s: IniSettings, files: string[]): ControlResult {
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

/** The executables of every `Exec*=` command in effect, and ExecStart's script (dist/server/main.js), with where each was set. */
export function programPaths(s: IniSettings): { path: string; at: string }[] {
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
