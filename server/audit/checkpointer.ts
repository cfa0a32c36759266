/**
 * The `Checkpointer` signs a new checkpoint of the audit log when the log has grown and at least
 * `intervalMs` passed since the last one (default 2 s), and on demand. Checkpoints are kept in
 * `audit_checkpoints` (vault.db), so every tree head the appliance ever vouched for stays
 * available: an auditor checks each one against the entries, and any two for consistency.
 *
 * It polls `max(seq)` once per interval instead of hooking every writer (security events and the
 * messaging batch writer append through their own `AuditLog` instances on the same Db): one cheap
 * indexed read per interval, one ECDSA signature only when the log grew.
 */
import type { Certificate, CryptoKey } from '../../pki/index.js';
import type { Db } from '../vault/index.js';
import { signCheckpoint, type SignedCheckpoint } from './checkpoint.js';
import type { AuditLog } from './log.js';

const MIGRATIONS = [
  {
    id: 'audit-checkpoints-1',
    sql: `CREATE TABLE audit_checkpoints (
        id INTEGER PRIMARY KEY,
        size INTEGER NOT NULL,
        root BLOB NOT NULL,
        at TEXT NOT NULL,
        note TEXT NOT NULL,
        signature BLOB NOT NULL
      ) STRICT;
      CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size);`,
  },
];

/** Options of {@link Checkpointer.open}. */
export interface CheckpointerOptions {
  db: Db;
  log: AuditLog;
  /** Names this log in every note (one line). */
  origin: string;
  cert: Certificate;
  key: CryptoKey;
  /** CA certificates embedded in each signature (issuing CA). Default none. */
  chain?: Certificate[];
  /** Minimum time between two checkpoints while entries arrive. Default 2000 ms. */
  intervalMs?: number;
  now?: () => Date;
  /** Where failures of the background timer go (the appliance log). Default: ignored. */
  onError?: (err: unknown) => void;
}

interface Row {
  id: number;
  size: number;
  root: Uint8Array;
  at: string;
  note: string;
  signature: Uint8Array;
}

/** A stored checkpoint with its row id (ids grow with time). */
export interface StoredCheckpoint extends SignedCheckpoint {
  id: number;
}

function fromRow(r: Row): StoredCheckpoint {
  return {
    id: r.id,
    origin: r.note.slice(0, r.note.indexOf('\n')),
    size: r.size,
    root: new Uint8Array(r.root),
    time: new Date(r.at),
    note: r.note,
    signature: new Uint8Array(r.signature),
  };
}

/**
 * Signs and stores checkpoints. `new Checkpointer(o)` (its table is created before the first use)
 * or {@link Checkpointer.open}; `start()` the timer.
 */
export class Checkpointer {
  readonly origin: string;
  readonly #o: Required<Omit<CheckpointerOptions, 'chain' | 'onError'>> & Pick<CheckpointerOptions, 'chain' | 'onError'>;
  #timer: NodeJS.Timeout | undefined;
  // One signing at a time: the timer and on-demand callers share it.
  #chain: Promise<unknown> = Promise.resolve();

  #ready: Promise<void> | undefined;

  constructor(o: CheckpointerOptions) {
    this.origin = o.origin;
    this.#o = { ...o, intervalMs: o.intervalMs ?? 2000, now: o.now ?? (() => new Date()) };
  }

  /** Creates the table if needed, once. */
  ready(): Promise<void> {
    return (this.#ready ??= this.#o.db.migrate(MIGRATIONS));
  }

  /** A checkpointer whose table exists. */
  static async open(o: CheckpointerOptions): Promise<Checkpointer> {
    const c = new Checkpointer(o);
    await c.ready();
    return c;
  }

  /** Starts the background timer (unref'd: it never keeps the process alive). Idempotent. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.tick().catch((err) => this.#o.onError?.(err));
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a signing under way. Call before the vault closes. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#chain.catch(() => undefined);
  }

  /** The newest stored checkpoint, or undefined before the first. */
  async latest(): Promise<StoredCheckpoint | undefined> {
    await this.ready();
    const r = await this.#o.db.get<Row>('SELECT * FROM audit_checkpoints ORDER BY id DESC LIMIT 1');
    return r ? fromRow(r) : undefined;
  }

  /** Stored checkpoints with `id > after`, oldest first, at most `limit` (≤ 1000). */
  async list(after = 0, limit = 1000): Promise<StoredCheckpoint[]> {
    await this.ready();
    const rows = await this.#o.db.all<Row>('SELECT * FROM audit_checkpoints WHERE id > ? ORDER BY id LIMIT ?', [after, Math.min(limit, 1000)]);
    return rows.map(fromRow);
  }

  /** The newest stored checkpoint of exactly `size`, if one was signed. */
  async atSize(size: number): Promise<StoredCheckpoint | undefined> {
    await this.ready();
    const r = await this.#o.db.get<Row>('SELECT * FROM audit_checkpoints WHERE size = ? ORDER BY id DESC LIMIT 1', [size]);
    return r ? fromRow(r) : undefined;
  }

  /** The timer's step: signs when the log grew and the interval has passed since the last one. */
  tick(): Promise<StoredCheckpoint | undefined> {
    return this.#serial(async () => {
      const last = await this.latest();
      const size = await this.#o.log.size();
      // Never sign a log that shrank: that would vouch for a cut history (see current()).
      if (last && size <= last.size) return undefined;
      if (last && this.#o.now().getTime() - last.time.getTime() < this.#o.intervalMs - 999) return undefined;
      return this.#sign();
    });
  }

  /**
   * The latest checkpoint covering the whole log as it is now: the stored one if the log has not
   * grown since, else a newly signed one (on demand, e.g. `GET /v1/audit/checkpoint`).
   */
  current(): Promise<StoredCheckpoint> {
    return this.#serial(async () => {
      const last = await this.latest();
      // A log smaller than what was signed has lost entries: keep serving the larger signed head,
      // so an auditor asks for entries it covers and finds exactly which are gone.
      if (last && last.size >= (await this.#o.log.size())) return last;
      return this.#sign();
    });
  }

  async #sign(): Promise<StoredCheckpoint> {
    const head = await this.#o.log.root();
    const signed = await signCheckpoint({
      origin: this.origin,
      size: head.size,
      root: head.root,
      time: this.#o.now(),
      cert: this.#o.cert,
      key: this.#o.key,
      ...(this.#o.chain ? { chain: this.#o.chain } : {}),
    });
    const r = await this.#o.db.run('INSERT INTO audit_checkpoints (size, root, at, note, signature) VALUES (?, ?, ?, ?, ?)', [
      signed.size,
      signed.root,
      signed.time.toISOString(),
      signed.note,
      signed.signature,
    ]);
    return { ...signed, id: Number(r.lastID) };
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(fn, fn);
    this.#chain = p.catch(() => undefined);
    return p;
  }
}
