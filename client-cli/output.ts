/**
 * What commands print. Data goes to stdout (a table or key/value list for people, one JSON
 * document with `--json` for machines); diagnostics go to stderr as one line `error: …`.
 */
import { escapeControls, oneLine } from './terminal-text.js';

/** A sink for text; `process.stdout` in the binary, a buffer in tests. */
export interface TextSink {
  write(text: string): unknown;
}

export interface Output {
  /**
   * One line of data on stdout. Controls in it are escaped (terminal-text.ts) as a last guard:
   * callers still make each value from others one line with `oneLine`, as only they know which
   * line breaks are theirs.
   */
  line(text: string): void;
  /** One JSON document on stdout (pretty, ends with a newline). */
  json(value: unknown): void;
  /** Rows as aligned columns with a header; an empty list prints nothing but the header. */
  table(rows: ReadonlyArray<Record<string, unknown>>, columns: ReadonlyArray<[key: string, header: string]>): void;
  /** `key: value` lines, keys aligned. */
  fields(pairs: ReadonlyArray<[string, unknown]>): void;
  /** A note for people on stderr (never data; silent when --json is given); controls escaped as in `line`. */
  note(text: string): void;
}

/** A table cell or field value: one line, control characters escaped, whoever's words it holds (terminal-text.ts). */
function cell(v: unknown): string {
  if (v === undefined || v === null) return '-';
  return oneLine(String(v));
}

/** Output writing to the given sinks; `json` mode silences `note`. */
export function createOutput(stdout: TextSink, stderr: TextSink, opts: { json?: boolean } = {}): Output {
  return {
    line: (text) => void stdout.write(escapeControls(text) + '\n'),
    json: (value) => void stdout.write(JSON.stringify(value, null, 2) + '\n'),
    table(rows, columns) {
      const widths = columns.map(([key, header]) => Math.max(header.length, ...rows.map((r) => cell(r[key]).length)));
      const fmt = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
      stdout.write(fmt(columns.map(([, h]) => h)) + '\n');
      for (const r of rows) stdout.write(fmt(columns.map(([k]) => cell(r[k]))) + '\n');
    },
    fields(pairs) {
      const w = Math.max(0, ...pairs.map(([k]) => k.length));
      for (const [k, v] of pairs) stdout.write(`${(k + ':').padEnd(w + 1)} ${cell(v)}\n`);
    },
    note: (text) => {
      if (!opts.json) stderr.write(escapeControls(text) + '\n');
    },
  };
}
