/**
 * Login challenges: single-use random nonces, held in memory with a TTL, each bound to the TLS
 * certificate (fingerprint) and the login it was issued for. A restart forgets them, which only
 * means a client asks again.
 */
import { randomBytes } from 'node:crypto';
import { NonceInvalidError } from './errors.js';

interface Pending {
  login: string;
  fingerprint: string;
  expiresAt: number;
}

/** Options of {@link NonceStore}. */
export interface NonceStoreOptions {
  ttlMs: number;
  now: () => Date;
  /** Bound on outstanding nonces (memory); oldest are dropped first. Default 10 000. */
  max?: number;
  random?: (n: number) => Buffer;
}

/** Issues and consumes login nonces. */
export class NonceStore {
  private readonly pending = new Map<string, Pending>();
  constructor(private readonly opts: NonceStoreOptions) {}

  /** A fresh nonce (32 random bytes, base64url) for `login` over the certificate `fingerprint`. */
  issue(login: string, fingerprint: string): { nonce: string; expiresAt: Date } {
    this.sweep();
    const max = this.opts.max ?? 10_000;
    while (this.pending.size >= max) {
      const oldest = this.pending.keys().next().value as string;
      this.pending.delete(oldest);
    }
    const nonce = (this.opts.random ?? randomBytes)(32).toString('base64url');
    const expiresAt = this.opts.now().getTime() + this.opts.ttlMs;
    this.pending.set(nonce, { login, fingerprint, expiresAt });
    return { nonce, expiresAt: new Date(expiresAt) };
  }

  /**
   * Consumes `nonce` (whatever the outcome: a nonce is tried once). Throws `NonceInvalidError`
   * if unknown/used, expired, or issued for another login or certificate.
   */
  consume(nonce: string, login: string, fingerprint: string): void {
    const p = this.pending.get(nonce);
    if (!p) throw new NonceInvalidError('unknown');
    this.pending.delete(nonce);
    if (p.expiresAt <= this.opts.now().getTime()) throw new NonceInvalidError('expired');
    if (p.fingerprint !== fingerprint) throw new NonceInvalidError('wrong-certificate');
    if (p.login !== login) throw new NonceInvalidError('wrong-login');
  }

  private sweep(): void {
    const now = this.opts.now().getTime();
    for (const [k, p] of this.pending) if (p.expiresAt <= now) this.pending.delete(k);
  }
}
