/**
 * The `Checkpointer` signs a new checkpoint of the audit log when the log has grown and at least
 * `intervalMs` passed since the last one (default 2 s), and on demand. Checkpoints are kept in
 * `audit_checkpoints` (vault.db), so every tree head the appliance ever vouched for stays
 * available: an auditor checks each one against the entries, and any two for consistency.
 *
 * It polls `max(seq)` once per interval instead of hooking every writer (security events and the
 * messaging batch writer append through their own `AuditLog` instances on the same Db): one cheap
 * indexed read per interval, one ECDSA signature only when the log grew.
 *
 * It signs only a tree that extends the newest checkpoint it signed before: the stored tree's root
 * at that size must be the signed one and the RFC 9162 consistency proof from it to the tree about
 * to be signed must verify (O(log n) stored node reads, see {@link Checkpointer.current}). A
 * rewritten history is refused with AUDIT_CHECKPOINT_MISMATCH, reported once through `onError`.
 */
import { verifyDetached, type Certificate, type CryptoKey } from '../../pki/index.js';
import type { Db } from '../vault/index.js';
import { parseCheckpoint, signCheckpoint, type SignedCheckpoint } from './checkpoint.js';
import { AuditCheckpointMismatchError, AuditError } from './errors.js';
import type { AuditLog } from './log.js';
import { verifyConsistency, type Hash } from './merkle.js';

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
  /**
   * Where failures of the background timer go (the appliance log), and the alarm when the stored
   * tree no longer extends the newest signed checkpoint (AUDIT_CHECKPOINT_MISMATCH) or is missing
   * a node it needs (AUDIT_TREE_DAMAGED): reported once per distinct failure, not at every tick.
   * Default: ignored.
   */
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

/**
 * A stored checkpoint as its note says it. The size, root and time columns are an index for
 * lookups and are not signed: a size changed to a huge number once made every later tick see
 * nothing to sign, silently. A note that does not parse keeps the columns; its signature check
 * (`#signedBody`, or the auditor's) refuses it anyway.
 */
function fromRow(r: Row): StoredCheckpoint {
  let body: { size: number; root: Uint8Array; time: Date } | undefined;
  try {
    body = parseCheckpoint(r.note);
  } catch {
    body = undefined;
  }
  return {
    id: r.id,
    origin: r.note.slice(0, r.note.indexOf('\n')),
    size: body?.size ?? r.size,
    root: body?.root ?? new Uint8Array(r.root),
    time: body?.time ?? new Date(r.at),
    note: r.note,
    signature: new Uint8Array(r.signature),
  };
}

/**
 * Stored checkpoints with `id > after`, oldest first, at most `limit` (≤ 1000), read without a
 * signing identity (verification, `sigil-server check`). None when the table does not exist yet.
 */
export async function listCheckpoints(db: Db, after = 0, limit = 1000): Promise<StoredCheckpoint[]> {
  const table = await db.get<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'audit_checkpoints'");
  if (!table?.n) return [];
  const rows = await db.all<Row>('SELECT * FROM audit_checkpoints WHERE id > ? ORDER BY id LIMIT ?', [after, Math.min(limit, 1000)]);
  return rows.map(fromRow);
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
  /** The newest checkpoint whose signed size and root are known good (signed here, or verified). */
  #trusted: { id: number; size: number; root: Hash } | undefined;
  /** The last refusal reported through onError, so a refusing tick does not log every interval. */
  #alarmed: string | undefined;

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
    return listCheckpoints(this.#o.db, after, limit);
  }

  /** The newest stored checkpoint of exactly `size`, if one was signed. */
  async atSize(size: number): Promise<StoredCheckpoint | undefined> {
    await this.ready();
    const r = await this.#o.db.get<Row>('SELECT * FROM audit_checkpoints WHERE size = ? ORDER BY id DESC LIMIT 1', [size]);
    return r ? fromRow(r) : undefined;
  }

  /**
   * The timer's step: signs when the log grew and the interval has passed since the last one.
   * A refusal (the stored tree does not extend the newest signed checkpoint, or is damaged) is
   * reported once through `onError` and answers undefined; the next tick checks again.
   */
  tick(): Promise<StoredCheckpoint | undefined> {
    return this.#serial(async () => {
      const last = await this.latest();
      const size = await this.#o.log.size();
      try {
        // Its signature first: a note changed to claim a huge size would stop all signing silently.
        if (last) await this.#signedBody(last);
        // Never sign a log that shrank: that would vouch for a cut history (see current()).
        if (last && size <= last.size) return undefined;
        if (last && this.#o.now().getTime() - last.time.getTime() < this.#o.intervalMs - 999) return undefined;
        return await this.#sign(last);
      } catch (err) {
        if (!isRefusal(err)) throw err;
        this.#alarm(err);
        return undefined;
      }
    });
  }

  /**
   * The latest checkpoint covering the whole log as it is now: the stored one if the log has not
   * grown since, else a newly signed one (on demand, e.g. `GET /v1/audit/checkpoint`).
   *
   * Before signing, the tree about to be signed must extend the newest stored checkpoint: that
   * checkpoint's signature is checked (once; the ones signed here are known), the stored tree's
   * root at its size must equal its signed root, and the RFC 9162 consistency proof from it to the
   * new head, read from the stored nodes, must verify. The root signed is the one the proof was
   * checked against, so whatever was done to the stored nodes, a new checkpoint only ever extends
   * the signed history (rewritten entries that the nodes do not reflect are for `AuditTrail.verify`).
   *
   * @throws AuditCheckpointMismatchError (409) when it does not: nothing is signed, the refusal is
   *   reported once through `onError`.
   * @throws AuditTreeDamagedError (409) when a node the check needs is missing.
   */
  current(): Promise<StoredCheckpoint> {
    return this.#serial(async () => {
      const last = await this.latest();
      try {
        if (last) await this.#signedBody(last);
        // A log smaller than what was signed has lost entries: keep serving the larger signed head,
        // so an auditor asks for entries it covers and finds exactly which are gone.
        if (last && last.size >= (await this.#o.log.size())) return last;
        return await this.#sign(last);
      } catch (err) {
        if (isRefusal(err)) this.#alarm(err);
        throw err;
      }
    });
  }

  async #sign(last: StoredCheckpoint | undefined): Promise<StoredCheckpoint> {
    const head = await this.#o.log.root();
    if (last) await this.#checkExtends(last, head);
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
    const id = Number(r.lastID);
    this.#trusted = { id, size: signed.size, root: signed.root };
    return { ...signed, id };
  }

  /**
   * Throws unless the tree of `head` extends the signed checkpoint `last`: O(log n) node reads
   * for the root at the signed size and for the consistency proof.
   */
  async #checkExtends(last: StoredCheckpoint, head: { size: number; root: Hash }): Promise<void> {
    const signed = await this.#signedBody(last);
    const which = { id: last.id, size: signed.size };
    const refuse = (why: string) =>
      new AuditCheckpointMismatchError(`refusing to sign: ${why}; the audit log was changed after checkpoint #${last.id} was signed (run sigil-server check)`, which);
    if (head.size < signed.size) throw refuse(`the stored tree has ${head.size} entries, signed checkpoint #${last.id} covers ${signed.size}`);
    const atSigned = await this.#o.log.root(signed.size);
    if (Buffer.compare(Buffer.from(atSigned.root), Buffer.from(signed.root)) !== 0) {
      throw refuse(`the stored tree's root at size ${signed.size} differs from the one signed in checkpoint #${last.id}`);
    }
    const proof = await this.#o.log.consistencyProof(signed.size, head.size);
    const v = verifyConsistency(signed.size, head.size, signed.root, head.root, proof);
    if (!v.ok) throw refuse(`the stored tree of size ${head.size} does not extend checkpoint #${last.id} (size ${signed.size}): ${v.detail}`);
  }

  /**
   * The size and root `last` really signed: its note, once its signature checked out with the
   * audit key. With the key, not this certificate: the audit certificate is renewed for the same
   * key (certs/audit-cert-renewal.ts), and a checkpoint names and embeds the certificate it was
   * signed under; only the audit private key makes a signature that the key verifies.
   */
  async #signedBody(last: StoredCheckpoint): Promise<{ size: number; root: Hash }> {
    const known = this.#trusted;
    if (known && known.id === last.id) return known;
    const which = { id: last.id, size: last.size };
    let body: { size: number; root: Hash };
    try {
      body = parseCheckpoint(last.note);
    } catch (err) {
      throw new AuditCheckpointMismatchError(`refusing to sign: stored checkpoint #${last.id} is not a checkpoint note: ${(err as Error).message}`, which, { cause: err });
    }
    const v = await verifyDetached(last.signature, new TextEncoder().encode(last.note));
    const reason = !v.ok ? v.reason : Buffer.from(v.signer.publicKeySpki).equals(Buffer.from(this.#o.cert.publicKeySpki)) ? undefined : 'another key';
    if (reason !== undefined) {
      throw new AuditCheckpointMismatchError(
        `refusing to sign: stored checkpoint #${last.id} is not signed by the audit key (${reason}); the checkpoint table was changed`,
        which,
      );
    }
    this.#trusted = { id: last.id, size: body.size, root: body.root };
    return this.#trusted;
  }

  /** Reports a refusal through onError unless it is the one reported last (per signed checkpoint, or per message). */
  #alarm(err: AuditError): void {
    const key = err instanceof AuditCheckpointMismatchError ? `${err.code}:#${err.checkpoint.id}` : `${err.code}:${err.message}`;
    if (this.#alarmed === key) return;
    this.#alarmed = key;
    this.#o.onError?.(err);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(fn, fn);
    this.#chain = p.catch(() => undefined);
    return p;
  }
}

/** The failures that make the checkpointer refuse to sign (409s): reported, not thrown, by the timer. */
function isRefusal(err: unknown): err is AuditError {
  return err instanceof AuditError && (err.code === 'AUDIT_CHECKPOINT_MISMATCH' || err.code === 'AUDIT_TREE_DAMAGED');
}
