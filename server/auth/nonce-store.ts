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
  /**
   * Bound on one certificate's outstanding nonces; its own oldest are dropped first. Default 128:
   * far above a person's needs, far below the global bound (a flood then takes ~80 certificates).
   * Without it, one certificate asking for challenges in a loop pushed everyone else's out of the
   * global bound before they could log in.
   */
  perCertificate?: number;
  random?: (n: number) => Buffer;
}

/** Issues and consumes login nonces. */
export class NonceStore {
  private readonly pending = new Map<string, Pending>();
  /** Each certificate's outstanding nonces, oldest first. */
  private readonly byCertificate = new Map<string, string[]>();
  constructor(private readonly opts: NonceStoreOptions) {}

  /** A fresh nonce (32 random bytes, base64url) for `login` over the certificate `fingerprint`. */
  issue(login: string, fingerprint: string): { nonce: string; expiresAt: Date } {
    this.sweep();
    const cap = this.opts.perCertificate ?? 128;
    for (let own = this.byCertificate.get(fingerprint); own && own.length >= cap; own = this.byCertificate.get(fingerprint)) this.drop(own[0]!);
    const max = this.opts.max ?? 10_000;
    while (this.pending.size >= max) this.drop(this.pending.keys().next().value as string);
    const nonce = (this.opts.random ?? randomBytes)(32).toString('base64url');
    const expiresAt = this.opts.now().getTime() + this.opts.ttlMs;
    this.pending.set(nonce, { login, fingerprint, expiresAt });
    this.byCertificate.set(fingerprint, [...(this.byCertificate.get(fingerprint) ?? []), nonce]);
    return { nonce, expiresAt: new Date(expiresAt) };
  }

  /**
   * Consumes `nonce` (whatever the outcome: a nonce is tried once). Throws `NonceInvalidError`
   * if unknown/used, expired, or issued for another login or certificate.
   */
  consume(nonce: string, login: string, fingerprint: string): void {
    const p = this.pending.get(nonce);
    if (!p) throw new NonceInvalidError('unknown');
    this.drop(nonce);
    if (p.expiresAt <= this.opts.now().getTime()) throw new NonceInvalidError('expired');
    if (p.fingerprint !== fingerprint) throw new NonceInvalidError('wrong-certificate');
    if (p.login !== login) throw new NonceInvalidError('wrong-login');
  }

  private sweep(): void {
    const now = this.opts.now().getTime();
    for (const [k, p] of this.pending) if (p.expiresAt <= now) this.drop(k);
  }

  /** Forgets `nonce`, and its place in its certificate's list. */
  private drop(nonce: string): void {
    const p = this.pending.get(nonce);
    if (!p) return;
    this.pending.delete(nonce);
    const own = this.byCertificate.get(p.fingerprint)?.filter((n) => n !== nonce);
    if (own?.length) this.byCertificate.set(p.fingerprint, own);
    else this.byCertificate.delete(p.fingerprint);
  }
}
