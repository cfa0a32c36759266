/**
 * Refused authentication in the audit trail — bounded, so that whoever can open a TLS connection
 * cannot grow the trail without limit by being refused.
 *
 * What is recorded (security-events.ts): `login.refused` (a login attempt on a locked login or
 * over a locked certificate, a nonce that is replayed, expired, unknown or bound to another
 * certificate or login), `session.refused` (a bearer token that is malformed, unknown, of an ended
 * session, of a disabled account, or presented over another certificate than its own — a stolen
 * token) and `certificate.refused` (a request over a revoked, expired or not yet valid
 * certificate, among them every login and challenge tried with one). Failed password checks are
 * `login.failed`, one entry each, as before: the lockout bounds those (auth/lockout.ts).
 *
 * The bound. Time is cut into fixed windows of `windowMs` (10 min) at the appliance clock. Within
 * a window, refusals with the same key — type, reason, actor, subject and detail (certificate
 * serial, peer address, …) — make one entry at the first (`count: 1`, written before the answer)
 * and, if more came, one summary entry when the window has ended (`count` = how many more,
 * `from`/`to` = the first and last of them). At most `maxKeys` (64) keys are kept apart per window;
 * refusals of further keys in that window are counted together per type and reason in one overflow
 * entry pair (`overflow: true`, actor `unauthenticated`, no subject). So a window adds at most
 * 2 × (`maxKeys` + 15) entries (15 type/reason pairs) — ≤ 158 per 10 min, whatever the rate.
 * Adding up every entry's `count` gives the number of refusals.
 *
 * Summaries are written by a timer (unref'd) once their window has ended, at the next refusal
 * after it, or at {@link RefusalAudit.close} (the appliance closes it before the vault). A crash
 * loses the counts of repeats not yet summarised, never a first entry. An append that fails (disk
 * full) is kept and retried with the next one, at most a few windows' worth.
 *
 * Content-free as the audit README requires: identifiers only (logins of existing accounts, keyed
 * hashes of others, certificate serials, peer addresses, reasons from fixed lists), never a
 * password, token, nonce or signature.
 */
import type { AuditSink, SecurityEvent } from './security-events.js';

/** Reasons per refusal type: fixed lists, so the overflow buckets are bounded too. */
export const REFUSAL_REASONS = {
  'login.refused': [
    'locked',
    'certificate-locked',
    'nonce-unknown',
    'nonce-expired',
    'nonce-used',
    'nonce-wrong-certificate',
    'nonce-wrong-login',
  ],
  'session.refused': ['malformed', 'unknown-token', 'other-certificate', 'ended', 'account-disabled'],
  'certificate.refused': ['revoked', 'issuing-ca-revoked', 'expired', 'not-yet-valid'],
} as const;

export type RefusalType = keyof typeof REFUSAL_REASONS;
/** Why the client-certificate check refused a request (middleware/client-cert.ts). */
export type CertificateRefusalReason = (typeof REFUSAL_REASONS)['certificate.refused'][number];
export type RefusalReason = (typeof REFUSAL_REASONS)[RefusalType][number];

const OVERFLOW_KINDS = Object.values(REFUSAL_REASONS).reduce((n, l) => n + l.length, 0);

/** One refusal. Everything but the time is part of its key. */
export interface Refusal {
  type: RefusalType;
  reason: RefusalReason;
  /** Who tried: a login (an existing account's, else its keyed hash), or `unauthenticated`. */
  actor: string;
  /** Whom it concerned (the login whose session a token names, …). */
  subject?: string;
  /** Identifiers: serials, an end reason, the peer address. Never secrets. */
  detail?: Record<string, string | boolean | null>;
}

/** Options of {@link RefusalAudit}. */
export interface RefusalAuditOptions {
  audit: AuditSink;
  /** The appliance clock (windows are cut at it). */
  now: () => Date;
  /** Window length. Default 10 minutes. */
  windowMs?: number;
  /** Keys kept apart per window. Default 64. */
  maxKeys?: number;
  /** Hears of an append that failed (it is retried). Default: nothing. */
  onError?: (err: unknown) => void;
}

interface Bucket {
  refusal: Refusal;
  /** Refusals after the first, in this window. */
  repeats: number;
  from?: Date;
  to?: Date;
}

const keyOf = (r: Refusal): string =>
  JSON.stringify([r.type, r.reason, r.actor, r.subject ?? null, Object.entries(r.detail ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))]);

/** Records refusals into the audit trail, aggregated per key and window. */
export class RefusalAudit {
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #maxPending: number;
  /** Index of the current window (`floor(now / windowMs)`). */
  #window = Number.NaN;
  readonly #buckets = new Map<string, Bucket>();
  /** Buckets of this window that are not overflow buckets. */
  #distinct = 0;
  /** Entries built and not yet appended. */
  #pending: SecurityEvent[] = [];
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(private readonly o: RefusalAuditOptions) {
    this.#windowMs = o.windowMs ?? 10 * 60_000;
    this.#maxKeys = o.maxKeys ?? 64;
    this.#maxPending = 4 * 2 * (this.#maxKeys + OVERFLOW_KINDS);
  }

  /**
   * Records one refusal: the first of its key in the window is appended before this resolves;
   * the others only count. Never throws (the refusal's own answer must not change).
   */
  async record(r: Refusal): Promise<void> {
    if (this.#closed) return;
    const now = this.o.now();
    this.#roll(now);
    let key = keyOf(r);
    let bucket = this.#buckets.get(key);
    let overflow = false;
    if (!bucket && this.#distinct >= this.#maxKeys) {
      overflow = true;
      r = { type: r.type, reason: r.reason, actor: 'unauthenticated', detail: { overflow: true } };
      key = keyOf(r);
      bucket = this.#buckets.get(key);
    }
    if (bucket) {
      bucket.repeats++;
      bucket.from ??= now;
      bucket.to = now;
      this.#arm(now);
      return;
    }
    this.#buckets.set(key, { refusal: r, repeats: 0 });
    if (!overflow) this.#distinct++;
    this.#pending.push(this.#event(r, now, { count: 1 }));
    await this.#drain();
  }

  /**
   * Appends the summaries of windows that have ended (with `all`, of the current one too, up to
   * now) and whatever is pending.
   */
  async flush(all = false): Promise<void> {
    const now = this.o.now();
    if (all) this.#summarise(now, true);
    else this.#roll(now);
    await this.#drain();
    if ([...this.#buckets.values()].some((b) => b.repeats > 0)) this.#arm(now);
  }

  /** Writes every count still held and stops; later refusals are not recorded. Call before the vault closes. */
  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush(true);
    this.#closed = true;
  }

  /** Starts a new window when the clock has left the current one, summarising the old one. */
  #roll(now: Date): void {
    const w = Math.floor(now.getTime() / this.#windowMs);
    if (w === this.#window) return;
    this.#summarise(now, false);
    this.#window = w;
  }

  /** Queues the summary of every bucket with repeats and forgets the buckets. */
  #summarise(now: Date, keepWindow: boolean): void {
    for (const b of this.#buckets.values()) {
      if (b.repeats === 0) continue;
      this.#pending.push(
        this.#event(b.refusal, now, { count: b.repeats, from: b.from!.toISOString(), to: b.to!.toISOString() }),
      );
    }
    this.#buckets.clear();
    this.#distinct = 0;
    if (keepWindow) this.#window = Number.NaN;
  }

  #event(r: Refusal, at: Date, counts: Record<string, string | number>): SecurityEvent {
    return {
      type: r.type,
      at,
      actor: r.actor,
      ...(r.subject !== undefined ? { subject: r.subject } : {}),
      detail: { reason: r.reason, ...r.detail, ...counts },
    };
  }

  /** Appends what is pending, one append at a time (in order); a failed one stays pending. */
  #drain(): Promise<void> {
    this.#chain = this.#chain.then(async () => {
      if (this.#pending.length === 0) return;
      const batch = this.#pending.splice(0);
      try {
        await this.o.audit.append(batch);
      } catch (err) {
        this.#pending.unshift(...batch);
        if (this.#pending.length > this.#maxPending) this.#pending.splice(0, this.#pending.length - this.#maxPending);
        this.o.onError?.(err);
      }
    });
    return this.#chain;
  }

  /** A timer for the end of the current window (real time; the window is judged at the appliance clock). */
  #arm(now: Date): void {
    if (this.#timer || this.#closed) return;
    const end = (Math.floor(now.getTime() / this.#windowMs) + 1) * this.#windowMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, Math.max(1_000, end - now.getTime() + 1));
    this.#timer.unref();
  }
}
