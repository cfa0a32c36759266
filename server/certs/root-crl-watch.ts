/**
 * Notices, while the server runs, that the root CA's CRL (`ca/root-crl.pem`) revokes the issuing
 * CA (`sigil-server sign-root-crl --revoke-issuing`, a root key ceremony held beside the running
 * server). From then on every certificate the appliance issued is invalid by RFC 5280 path
 * validation: the client-certificate check refuses every request that needs one
 * (ISSUING_CA_REVOKED), and the appliance ends every session so that open event streams close.
 * Before this the server went on accepting and serving messages under the revoked CA, and only
 * readers, checking the whole chain, refused them.
 *
 * - A file is believed only if the root certificate (`ca/root.pem`) signed it: a file that does
 *   not parse or is not the root's is reported (`onIgnored`, once per file) and changes nothing.
 * - The revocation is sticky for the life of the process (RFC 5280 §3.3: a revocation is
 *   permanent): a later file without it — a copy put back by hand — does not lift it. At the next
 *   start the file decides again; the ceremony always carries its revocations over.
 * - The check runs at open, before anyone is served, and then every `checkEveryMs` on an unref'd
 *   timer. A file whose size, mtime and inode are those already checked is not read again, so a
 *   check is one `stat` while nothing changes.
 * - No root CRL (an appliance made before them) revokes nothing; `check` already warns of it.
 */
import { stat } from 'node:fs/promises';
import type { Certificate } from '../../pki/index.js';
import { PeriodicCheck } from '../periodic-check.js';
import { readRootCrlFile } from './root-crl-file.js';

/** What the watch knows once the root CRL revokes the issuing CA. */
export interface IssuingRevocation {
  /** The issuing CA's serial (hex). */
  serial: string;
  /** The number of the first root CRL seen to revoke it. */
  crlNumber: number;
  revocationDate: Date;
}

/** Default interval between checks (real milliseconds): a stat every 10 s is nothing. */
export const DEFAULT_ROOT_CRL_CHECK_MS = 10_000;

/** Options of {@link RootCrlWatch}. */
export interface RootCrlWatchOptions {
  /** The root CRL's path (the appliance's `ca/root-crl.pem`). */
  file: string;
  rootCert: Certificate;
  issuingCert: Certificate;
  /** Real milliseconds between checks. Default {@link DEFAULT_ROOT_CRL_CHECK_MS}. */
  checkEveryMs?: number;
  /**
   * Told when the revocation is first seen (at open: before anyone is served); told again at each
   * check until it resolves, so a failure (ending the sessions) is retried.
   */
  onRevoked?: (r: IssuingRevocation) => void | Promise<void>;
  /** Told of a file that changes nothing because it is unreadable or not the root's; once per file. */
  onIgnored?: (why: string) => void;
  /** Told of a check that failed (a read error); the next check tries again. */
  onError?: (err: unknown) => void;
}

export class RootCrlWatch {
  readonly #o: RootCrlWatchOptions;
  readonly #periodic: PeriodicCheck<IssuingRevocation>;
  readonly #file: string;
  #revoked: IssuingRevocation | undefined;
  /** Whether `onRevoked` has run to its end (a failure, e.g. ending the sessions, is retried at the next check). */
  #told = false;
  /** size/mtime/inode of the file last checked; undefined before the first check or when absent. */
  #stamp: string | undefined;

  constructor(o: RootCrlWatchOptions) {
    this.#o = o;
    this.#file = o.file;
    this.#periodic = new PeriodicCheck({
      name: 'RootCrlWatch',
      everyMs: o.checkEveryMs ?? DEFAULT_ROOT_CRL_CHECK_MS,
      check: () => this.#check(),
      ...(o.onError ? { onError: o.onError } : {}),
    });
  }

  /** The issuing CA's revocation, once a root CRL said so; undefined while it stands. */
  get revoked(): IssuingRevocation | undefined {
    return this.#revoked;
  }

  /**
   * Checks once now and then every `checkEveryMs`. Rejects if the file is there but cannot be read:
   * a server that cannot tell whether its CA is revoked does not start.
   */
  async start(): Promise<void> {
    if (this.#periodic.startedOrStopped) return;
    await this.#periodic.run();
    this.#periodic.startTimer();
  }

  /** One check now (or joins the one under way); resolves with the revocation if there is one. */
  check(): Promise<IssuingRevocation | undefined> {
    return this.#periodic.run();
  }

  /** Stops the timer and waits for a check under way. */
  stop(): Promise<void> {
    return this.#periodic.stop();
  }

  /** A read error that names the file (at open it is the server's one line), its code kept. */
  #unreadable(err: unknown): Error {
    const e = err as NodeJS.ErrnoException;
    return Object.assign(new Error(`cannot read the root CRL ${this.#file}: ${e.message}`, { cause: err }), e.code ? { code: e.code } : {});
  }

  async #check(): Promise<IssuingRevocation | undefined> {
    if (this.#revoked) return this.#tell(this.#revoked);
    let s;
    try {
      s = await stat(this.#file, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw this.#unreadable(err);
      this.#stamp = undefined;
      return undefined;
    }
    const stamp = `${s.size}:${s.mtimeNs}:${s.ino}`;
    if (stamp === this.#stamp) return undefined;
    const r = await readRootCrlFile(this.#file, this.#o.rootCert).catch((err: unknown) => {
      throw this.#unreadable(err);
    });
    this.#stamp = stamp;
    if ('missing' in r) return undefined;
    if ('invalid' in r) {
      this.#o.onIgnored?.(`${this.#file} ${r.invalid}; it changes nothing`);
      return undefined;
    }
    const { crl } = r;
    const serial = this.#o.issuingCert.serialNumber;
    const entry = crl.find(serial);
    if (!entry) return undefined;
    // Refused from here on, even if telling fails below.
    this.#revoked = { serial, crlNumber: Number(crl.crlNumber), revocationDate: entry.revocationDate };
    return this.#tell(this.#revoked);
  }

  /** Runs `onRevoked` until it has once succeeded; rejects with its failure (the next check tries again). */
  async #tell(r: IssuingRevocation): Promise<IssuingRevocation> {
    if (!this.#told) {
      await this.#o.onRevoked?.(r);
      this.#told = true;
    }
    return r;
  }
}
