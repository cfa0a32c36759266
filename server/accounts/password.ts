/**
 * Passwords: argon2id hashing with a bound on concurrent hashes, envelope password generation and
 * the password policy.
 *
 * argon2id parameters default to OWASP's minimum (m=19 MiB, t=2, p=1; OWASP Password Storage Cheat
 * Sheet). Each hash holds `memoryCost` KiB while it runs, so at most `concurrency` run at once; the
 * others wait in a FIFO queue. argon2 runs on libuv's thread pool, never on the event loop.
 */
import os from 'node:os';
import { randomInt as nodeRandomInt } from 'node:crypto';
import argon2 from 'argon2';
import { PasswordWeakError } from './errors.js';

/** argon2id cost parameters. */
export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
  /** Maximum hashes at once. Default `os.availableParallelism()`. */
  concurrency?: number;
}

/** OWASP minimum for argon2id. */
export const DEFAULT_ARGON2: Readonly<Argon2Params> = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/** A FIFO counting semaphore. */
class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly size: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** Hashes and verifies passwords with argon2id under a concurrency bound. */
export class PasswordHasher {
  private readonly gate: Semaphore;
  constructor(private readonly params: Argon2Params = DEFAULT_ARGON2) {
    this.gate = new Semaphore(params.concurrency ?? os.availableParallelism());
  }

  /** PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash`. */
  hash(password: string): Promise<string> {
    return this.gate.run(() =>
      argon2.hash(password, {
        type: argon2.argon2id,
        memoryCost: this.params.memoryCost,
        timeCost: this.params.timeCost,
        parallelism: this.params.parallelism,
      }),
    );
  }

  /** True when `password` matches `phc`. A malformed hash string is a mismatch, not a crash. */
  verify(phc: string, password: string): Promise<boolean> {
    return this.gate.run(async () => {
      try {
        return await argon2.verify(phc, password);
      } catch {
        return false;
      }
    });
  }
}

/**
 * Alphabet of envelope passwords: no 0/O, 1/l/I, no look-alike 5/S, 2/Z, 8/B; lower case only
 * so nothing depends on shift. 28 symbols: log2(28) ≈ 4.81 bits each.
 */
export const ENVELOPE_ALPHABET = 'abcdefghjkmnpqrstuvwxy346789';

/** Symbols in an envelope password: 20 × 4.81 ≈ 96 bits (≥ 80 required). */
export const ENVELOPE_PASSWORD_SYMBOLS = 20;

/** Entropy of a generated envelope password, in bits. */
export const ENVELOPE_PASSWORD_BITS = ENVELOPE_PASSWORD_SYMBOLS * Math.log2(ENVELOPE_ALPHABET.length);

/**
 * A one-time envelope password: {@link ENVELOPE_PASSWORD_SYMBOLS} symbols drawn uniformly
 * (`crypto.randomInt` rejects bias) from {@link ENVELOPE_ALPHABET}, in groups of 5 joined by `-`
 * for reading aloud and typing (`abcde-fghjk-mnpqr-stuvw`).
 */
export function generateEnvelopePassword(randomInt: (max: number) => number = nodeRandomInt): string {
  const symbols: string[] = [];
  for (let i = 0; i < ENVELOPE_PASSWORD_SYMBOLS; i++) symbols.push(ENVELOPE_ALPHABET[randomInt(ENVELOPE_ALPHABET.length)]);
  const groups: string[] = [];
  for (let i = 0; i < symbols.length; i += 5) groups.push(symbols.slice(i, i + 5).join(''));
  return groups.join('-');
}

/**
 * `password` written the way {@link generateEnvelopePassword} prints it (lower case, groups of 5
 * joined by `-`) when it is an envelope password written otherwise — in capitals, without the
 * dashes, with spaces — else undefined. The first login compares a new password with the envelope
 * password through the stored hash only, so it checks this form too: otherwise the printed
 * envelope, which the officer and whoever else handled it have read, stayed the password.
 */
export function envelopePasswordForm(password: string): string | undefined {
  const symbols = password.replace(/[\s-]/g, '').toLowerCase();
  if (symbols.length !== ENVELOPE_PASSWORD_SYMBOLS || ![...symbols].every((ch) => ENVELOPE_ALPHABET.includes(ch))) return undefined;
  return symbols.match(/.{5}/g)!.join('-');
}

/** Minimum length of a chosen password. */
export const MIN_PASSWORD_LENGTH = 12;
/** Maximum length (argon2 accepts more; this bounds work per request). */
export const MAX_PASSWORD_LENGTH = 256;

/**
 * The policy for a password a user chooses: ≥ 12 characters, not the login, not the envelope
 * password. Throws `PasswordWeakError` naming the rule.
 */
export function checkNewPassword(password: string, ctx: { login: string; envelopePassword?: string }): void {
  if ([...password].length < MIN_PASSWORD_LENGTH)
    throw new PasswordWeakError(`it must have at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_PASSWORD_LENGTH)
    throw new PasswordWeakError(`it must have at most ${MAX_PASSWORD_LENGTH} characters`);
  if (password.toLowerCase().includes(ctx.login.toLowerCase()))
    throw new PasswordWeakError('it must not contain the login');
  const strip = (s: string) => s.replace(/-/g, '').toLowerCase();
  if (ctx.envelopePassword !== undefined && strip(password) === strip(ctx.envelopePassword))
    throw new PasswordWeakError('it must not be the envelope password');
}
