/**
 * systemd's INI dialect (systemd.syntax(7)), read the way systemd's config_parse() reads it:
 * `[Section]`, `Key=Value`, `#`/`;` comments, a line ending in an unescaped backslash continues.
 * Used for the unit, its drop-ins, coredump.conf and system.conf. Assignments are kept in order with
 * their file and line, because systemd's meaning of a key depends on every assignment (the last wins
 * for scalars; lists accumulate and an empty value resets them).
 */
import type { Host } from './host.js';

/** One `Key=Value` line. */
export interface IniAssignment {
  readonly section: string;
  readonly key: string;
  readonly value: string;
  readonly file: string;
  readonly line: number;
}

/** What systemd's strstrip() removes: its WHITESPACE, not all that String.trim() does (NBSP, \v…). */
const strip = (s: string): string => s.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, '');

const isEol = (c: string): boolean => c === '\n' || c === '\r' || c === '\0';

/**
 * Splits text into physical lines as systemd's read_line() does: a line ends at \n, \r or NUL, and
 * one line ending takes each of \n and \r at most once (so \r\n and \n\r are one ending, a lone \r is
 * one too) and nothing after a NUL.
 */
function physicalLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    if (!isEol(text[i])) {
      i++;
      continue;
    }
    lines.push(text.slice(start, i));
    const seen = new Set<string>();
    while (i < text.length && isEol(text[i]) && !seen.has(text[i]) && !seen.has('\0')) seen.add(text[i++]);
    start = i;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

/** A comment line: `#` or `;` after leading whitespace. systemd skips it even inside a continuation. */
const isComment = (line: string): boolean => /^[ \t\n\r]*[#;]/.test(line);

/**
 * True when the line ends in an escaped character, i.e. an odd number of backslashes: systemd then
 * continues it. `\\` (an escaped backslash) and `\ ` (an escaped space) do not continue.
 */
function continues(line: string): boolean {
  let end = line.length;
  while (end > 0 && line[end - 1] === '\\') end--;
  return (line.length - end) % 2 === 1;
}

/** Parses one file's text into its assignments, in order (systemd's config_parse()). */
export function parseIni(text: string, file: string): IniAssignment[] {
  const out: IniAssignment[] = [];
  const state = { section: '', stopped: false };
  let continuation: { text: string; line: number } | undefined;
  let bomSeen = false;
  const lines = physicalLines(text);
  for (let i = 0; i < lines.length && !state.stopped; i++) {
    let line = lines[i];
    if (isComment(line)) continue;
    // systemd drops one byte-order mark: from the first line that starts with one.
    if (!bomSeen && line.startsWith('\ufeff')) {
      line = line.slice(1);
      bomSeen = true;
    }
    const joined = continuation ? { text: continuation.text + line, line: continuation.line } : { text: line, line: i + 1 };
    if (continues(joined.text)) {
      // The continuing backslash becomes a space; the next line is appended as it is, untrimmed.
      continuation = { text: `${joined.text.slice(0, -1)} `, line: joined.line };
      continue;
    }
    continuation = undefined;
    parseLine(joined.text, file, joined.line, state, out);
  }
  // A file may end inside a continuation: systemd still parses what it gathered.
  if (continuation && !state.stopped) parseLine(continuation.text, file, continuation.line, state, out);
  return out;
}

/** One logical line (systemd's parse_line()): a section header, an assignment, or nothing. */
function parseLine(
  raw: string,
  file: string,
  line: number,
  state: { section: string; stopped: boolean },
  out: IniAssignment[],
): void {
  const l = strip(raw);
  if (l === '') return;
  // Two errors end systemd's reading of the file (the rest of a drop-in is lost; a main unit file
  // fails to load): a line that is not UTF-8 (readText decodes such bytes to U+FFFD), and a section
  // header without its closing bracket.
  if (l.includes('\ufffd') || (l.startsWith('[') && (l.length < 2 || !l.endsWith(']')))) {
    state.stopped = true;
    return;
  }
  // `[Service]]` names the section "Service]": unknown, so what follows is ignored.
  if (l.startsWith('[')) {
    state.section = l.slice(1, -1);
    return;
  }
  const eq = l.indexOf('=');
  // systemd ignores assignments before the first section, and lines without a key.
  if (state.section === '' || eq <= 0) return;
  out.push({ section: state.section, key: strip(l.slice(0, eq)), value: strip(l.slice(eq + 1)), file, line });
}

/** The merged assignments of a main file and its drop-ins, in the order systemd applies them. */
export class IniSettings {
  constructor(readonly assignments: readonly IniAssignment[]) {}

  /** Every assignment of `section.key`, in order. */
  all(section: string, key: string): IniAssignment[] {
    return this.assignments.filter((a) => a.section === section && a.key === key);
  }

  /** The effective scalar: the last assignment of `section.key`, or undefined. */
  last(section: string, key: string): IniAssignment | undefined {
    const all = this.all(section, key);
    return all[all.length - 1];
  }

  /**
   * The effective list (space separated): assignments accumulate and an empty one resets the list.
   * `undefined` when the key is never assigned.
   */
  list(section: string, key: string): string[] | undefined {
    const all = this.all(section, key);
    if (all.length === 0) return undefined;
    let items: string[] = [];
    for (const a of all) items = a.value === '' ? [] : [...items, ...a.value.split(/\s+/)];
    return items;
  }

  /** `file:line` of the last assignment of `section.key`, for reasons. */
  where(section: string, key: string): string {
    const a = this.last(section, key);
    return a ? `${a.file}:${a.line}` : 'nowhere';
  }
}

/** systemd's boolean words (systemd.syntax(7)). */
export function iniBoolean(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (['1', 'yes', 'y', 'true', 't', 'on'].includes(v)) return true;
  if (['0', 'no', 'n', 'false', 'f', 'off'].includes(v)) return false;
  return undefined;
}

/**
 * Where systemd looks for its own configuration files (system.conf, coredump.conf and their `.d/`
 * drop-ins), most important first.
 */
export const SYSTEMD_CONF_DIRS: readonly string[] = ['/etc/systemd', '/run/systemd', '/usr/local/lib/systemd', '/usr/lib/systemd', '/lib/systemd'];

/**
 * Parses a main file, already read, and then its drop-ins in the order given (as
 * {@link Host.confDirFiles} lists them) into one settings view.
 */
export async function readIniFiles(
  host: Host,
  main: { file: string; text: string } | undefined,
  dropIns: readonly string[],
): Promise<IniSettings> {
  const assignments: IniAssignment[] = main ? parseIni(main.text, main.file) : [];
  for (const file of dropIns) assignments.push(...parseIni((await host.readText(file)) ?? '', file));
  return new IniSettings(assignments);
}

/** The file `name` in the first of `dirs` (most important first) that has it, read; undefined in none. */
export async function firstFile(host: Host, dirs: readonly string[], name: string): Promise<{ file: string; text: string } | undefined> {
  for (const dir of dirs) {
    const text = await host.readText(`${dir}/${name}`);
    if (text !== undefined) return { file: `${dir}/${name}`, text };
  }
  return undefined;
}

/**
 * Loads a systemd configuration file and its drop-ins (`<name>.d/*.conf`) from `dirs` (most
 * important first): the main file from the first directory that has it, then the drop-ins sorted by
 * name, one per name. Returns undefined when no main file exists and no drop-in either.
 */
export async function loadIniWithDropIns(
  host: Host,
  dirs: readonly string[],
  name: string,
): Promise<{ main: string | undefined; files: string[]; settings: IniSettings } | undefined> {
  const main = await firstFile(host, dirs, name);
  const dropIns = await host.confDirFiles(dirs.map((dir) => `${dir}/${name}.d`));
  if (main === undefined && dropIns.length === 0) return undefined;
  const files = main ? [main.file, ...dropIns] : dropIns;
  return { main: main?.file, files, settings: await readIniFiles(host, main, dropIns) };
}
