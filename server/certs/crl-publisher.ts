/**
 * Publishing the CRL: one publication at a time, a new one whenever asked, and one only when due
 * (no CRL yet, half its validity used, or a revoked certificate missing from it). Owns the
 * publication queue and the parsed latest CRL; certificate-service.ts and revocation.ts publish
 * through it, crl-refresher.ts asks it (through the service) every minute.
 */
import { Crl } from '../../pki/index.js';
import { securityEvent } from '../auth/security-events.js';
import { KeyedQueue } from '../keyed-queue.js';
import type { CrlRecord } from './certificate-store.js';
import type { CertificateServiceDeps } from './certificate-service.js';

/** Dependencies of {@link CrlPublisher}: those of the certificate service it needs. */
export type CrlPublisherDeps = Pick<CertificateServiceDeps, 'db' | 'certificates' | 'issuer' | 'audit' | 'now' | 'crlValidityMs'>;

/** Whether `crl` has used half its validity (or more) at `now`: time to publish the next one. */
export function crlRefreshDue(crl: Pick<CrlRecord, 'thisUpdate' | 'nextUpdate'>, now: Date): boolean {
  const half = (crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2;
  return now.getTime() >= crl.thisUpdate.getTime() + half;
}

/** Signs and stores CRLs, one publication at a time. */
export class CrlPublisher {
  /**
   * CRLs are published one at a time. Two at once (two revocations, or a revocation and a
   * clearance change) read the same last number and the same revoked list: the second insert
   * failed on the number, and the CRL that was kept lacked the other revocation.
   */
  readonly #crl = new KeyedQueue();

  /** The latest CRL, parsed once per number: the refresher asks about it every minute. */
  #parsed?: { number: number; crl: Crl };

  constructor(private readonly d: CrlPublisherDeps) {}

  /** Signs and stores a new CRL listing every revoked certificate (one publication at a time). */
  publish(officer: string): Promise<CrlRecord> {
    return this.#crl.run('crl', () => this.#publishCrl(officer));
  }

  /**
   * Publishes a CRL unless the latest one lists `serial` already. Decided in the publication queue:
   * of concurrent revocations of one serial (the winner and the losers), only the first publishes.
   */
  publishUnlisted(serial: string, officer: string): Promise<void> {
    return this.#crl.run('crl', async () => {
      if (!(await this.#unlisted(await this.d.certificates.latestCrl(), [serial]))) return;
      await this.#publishCrl(officer);
    });
  }

  /**
   * Publishes a new CRL, exactly as {@link publish} does (audit entry `crl.published` by
   * `actor`), when there is none, the latest has used half its validity at the service clock
   * (stale ones included), or the latest lacks a revoked certificate: a revocation whose own
   * publication failed (a full disk) or was cut by a crash after its commit is out within a check,
   * not days later. Decided in the publication queue, so a publication just queued ahead (a
   * revocation, `sigil crl publish`) counts and no second one follows it.
   * @returns the new CRL, or undefined when the latest is still fresh and complete.
   */
  refreshIfDue(actor = 'system'): Promise<CrlRecord | undefined> {
    return this.#crl.run('crl', async () => {
      const last = await this.d.certificates.latestCrl();
      const due = !last || crlRefreshDue(last, this.d.now()) || (await this.#unlisted(last, await this.d.certificates.revokedSerials()));
      return due ? this.#publishCrl(actor) : undefined;
    });
  }

  /** Whether `crl` (none: true) lacks any of `serials`. */
  async #unlisted(crl: CrlRecord | undefined, serials: readonly string[]): Promise<boolean> {
    if (!crl) return true;
    if (this.#parsed?.number !== crl.number) this.#parsed = { number: crl.number, crl: Crl.fromDer(crl.der) };
    const parsed = this.#parsed.crl;
    return serials.some((s) => !parsed.find(s));
  }

  async #publishCrl(officer: string): Promise<CrlRecord> {
    const revoked = await this.d.certificates.revoked();
    const last = await this.d.certificates.latestCrl();
    const number = (last?.number ?? 0) + 1;
    const thisUpdate = this.d.now();
    const nextUpdate = new Date(thisUpdate.getTime() + this.d.crlValidityMs);
    const crl = await this.d.issuer.createCrl({
      revoked: revoked.map((r) => ({
        serialNumber: r.serial,
        revocationDate: r.revokedAt ?? thisUpdate,
        reason: r.reason ?? 'unspecified',
      })),
      crlNumber: BigInt(number),
      thisUpdate,
      nextUpdate,
    });
    const rec: CrlRecord = { number, der: Buffer.from(crl.der), thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate };
    await this.d.db.transaction(async () => {
      await this.d.certificates.addCrl(rec);
      await this.d.audit.append([securityEvent(this.d.now(), 'crl.published', officer, 'crl', { count: revoked.length, crlNumber: number })]);
    });
    return rec;
  }
}
