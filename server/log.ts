/**
 * Structured log: one JSON object per line on stderr.
 *
 * Redaction by allowlist: only fields named in {@link SAFE_FIELDS} are written, and only as
 * scalars; anything else is dropped silently. A body, password, token or key cannot reach the log
 * by accident because there is no field to put it in.
 */

/** Severity, in increasing order. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Fields that may appear in a log line. Values must be strings, numbers, booleans or null.
 * {@link LogFields} is typed from this list, so a call that names any other field does not compile
 * (the runtime filter below stays for values that reach the logger through a cast).
 */
const SAFE_FIELD_NAMES = [
  'requestId',
  'method',
  'path',
  'status',
  'ms',
  'code',
  'login',
  'role',
  'serial',
  'peer',
  'listen',
  'url',
  'dataDir',
  'reason',
  'signal',
  'errorName',
  'errorCode',
  'errorMessage',
  'stack',
  'count',
  // a file's size (a backup, a repacked vault)
  'bytes',
  // a batch of messages: how many were accepted and refused, and the refusal codes ("CODE:n,…")
  'accepted',
  'refused',
  'codes',
  'version',
  'pid',
  // libuv's pool size the server started with (threadpool.ts)
  'threadPool',
  // the malloc the process runs on: jemalloc when the unit preloads it (allocator.ts)
  'malloc',
  // a migration applied at start (its id), its phase (start, done) and the database file it
  // changed; `file` is also a stored file's id where a file's handling failed
  'migration',
  'phase',
  'file',
  // start's reconciliation of keys.db with vault.db: keys given their place, orphan keys destroyed
  'placed',
  'orphans',
  // free bytes on the data directory's file system (the disk reserve, server/vault/disk-reserve.ts)
  'free',
] as const;

/** A field name the log writes. */
export type SafeField = (typeof SAFE_FIELD_NAMES)[number];

/** {@link SAFE_FIELD_NAMES} as a set, for the runtime filter (and tests). */
export const SAFE_FIELDS: ReadonlySet<string> = new Set<string>(SAFE_FIELD_NAMES);

/** Scalar values only, under safe names only: no object can smuggle a body in. */
export type LogFields = { [K in SafeField]?: string | number | boolean | null | undefined };

/** A logger. `child` pins fields (e.g. requestId) on every line. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. Default `info`. */
  level?: LogLevel;
  /** Where lines go. Default: `process.stderr.write`. */
  write?: (line: string) => void;
  /** Clock for the `time` field. Default `() => new Date()`. */
  now?: () => Date;
}

function pickSafe(fields: LogFields | undefined, into: Record<string, unknown>): void {
  if (!fields) return;
  for (const [k, v] of Object.entries(fields)) {
    if (!SAFE_FIELDS.has(k) || v === undefined) continue;
    const t = typeof v;
    if (v === null || t === 'string' || t === 'number' || t === 'boolean') into[k] = v;
  }
}

/** Creates a JSON-lines logger. */
export function createLogger(options: LoggerOptions = {}, pinned: LogFields = {}): Logger {
  const min = LEVELS[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVELS[level] < min) return;
    const line: Record<string, unknown> = { time: now().toISOString(), level, msg };
    pickSafe(pinned, line);
    pickSafe(fields, line);
    write(JSON.stringify(line) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger(options, { ...pinned, ...f }),
  };
}

/** A logger that writes nothing (tests that do not look at logs). */
export const silentLogger: Logger = createLogger({ write: () => {} });

/** Safe description of a thrown value for the log: name, code, message and stack; no payload. */
export function errorFields(err: unknown): LogFields {
  if (!(err instanceof Error)) return { errorName: typeof err };
  const code = (err as { code?: unknown }).code;
  return {
    errorName: err.name,
    errorCode: typeof code === 'string' ? code : undefined,
    errorMessage: err.message,
    stack: err.stack,
  };
}
