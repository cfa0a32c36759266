/**
 * systemd's INI dialect (systemd.syntax(7)): `[Section]`, `Key=Value`, `#`/`;` comments, a trailing
 * backslash continues a line. Used for the unit, its drop-ins, coredump.conf and system.conf.
 * Assignments are kept in order with their file and line, because systemd's meaning of a key depends
 * on every assignment (the last wins for scalars; lists accumulate and an empty value resets them).
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

/** Parses one file's text into its assignments, in order. */
export function parseIni(text: string, file: string): IniAssignment[] {
  const out: IniAssignment[] = [];
  const lines = text.split('\n');
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i].replace(/\r$/, '').trim();
    if (line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      line = `${line.slice(0, -1)} ${lines[++i].replace(/\r$/, '').trim()}`;
    }
    if (line === '') continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), file, line: start + 1 });
  }
  return out;
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
 * Loads a systemd configuration file and its drop-ins (`<name>.d/*.conf`) from `dirs` (most
 * important first): the main file from the first directory that has it, then the drop-ins sorted by
 * name, one per name. Returns undefined when no main file exists and no drop-in either.
 */
export async function loadIniWithDropIns(
  host: Host,
  dirs: readonly string[],
  name: string,
  options: { requireMain?: boolean } = {},
): Promise<{ main: string | undefined; files: string[]; settings: IniSettings } | undefined> {
  let main: string | undefined;
  let mainText: string | undefined;
  for (const dir of dirs) {
    mainText = await host.readText(`${dir}/${name}`);
    if (mainText !== undefined) {
      main = `${dir}/${name}`;
      break;
    }
  }
  const dropIns = await host.confDirFiles(dirs.map((dir) => `${dir}/${name}.d`));
  if (main === undefined && (options.requireMain || dropIns.length === 0)) return undefined;
  const assignments: IniAssignment[] = main ? parseIni(mainText as string, main) : [];
  for (const file of dropIns) assignments.push(...parseIni((await host.readText(file)) ?? '', file));
  return { main, files: main ? [main, ...dropIns] : dropIns, settings: new IniSettings(assignments) };
}
