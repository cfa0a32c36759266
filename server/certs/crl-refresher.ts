/**
 * Keeps the published CRL fresh while the server runs. Readers check every message against the
 * newest CRL at the message's receipt time, and a CRL past its nextUpdate fails them all
 * (pki/validate.ts `crl-stale`; `openssl cms -verify -crl_check`: "CRL has expired"). A CRL was
 * published only at init, on a revocation and on `sigil crl publish`, so an appliance that revoked
 * nothing for `crlValidityMs` (7 days) broke every reader.
 *
 * The refresher asks {@link CertificateService.refreshCrlIfDue} at start and then every
 * `checkEveryMs`: once the latest CRL has used half its validity, or lacks a revoked certificate
 * (a revocation whose own publication failed or was cut by a crash), a new one is published through
 * the same publication queue and code as a manual publish (audit entry `crl.published`, actor
 * `system`). "Due" is judged at the service's clock, so tests move only the clock.
 */
import type { CrlRecord } from './certificate-store.js';
import type { CertificateService } from './certificate-service.js';
import { PeriodicCheck } from '../periodic-check.js';

/** Default check interval: a minute, or a quarter of the CRL validity when that is shorter (≥ 1 s). */
export function defaultCrlCheckMs(crlValidityMs: number): number {
  return Math.max(1000, Math.min(60_000, Math.floor(crlValidityMs / 4)));
}

/** Options of {@link CrlRefresher}. */
export interface CrlRefresherOptions {
  service: Pick<CertificateService, 'refreshCrlIfDue'>;
  /** Real milliseconds between checks (the timer's, not the service clock's). */
  checkEveryMs: number;
  /** Told of each CRL the refresher published. */
  onPublished?: (crl: CrlRecord) => void;
  /** Told of a failed check or publication; the next check tries again. */
  onError?: (err: unknown) => void;
}

/** The republication timer. `start()` (checks at once), `stop()` before the vault closes. */
export class CrlRefresher {
  readonly #periodic: PeriodicCheck<CrlRecord>;

  constructor(o: CrlRefresherOptions) {
    this.#periodic = new PeriodicCheck({
      name: 'CrlRefresher',
      everyMs: o.checkEveryMs,
      check: async () => {
        const crl = await o.service.refreshCrlIfDue('system');
        if (crl) o.onPublished?.(crl);
        return crl;
      },
      ...(o.onError ? { onError: o.onError } : {}),
    });
  }

  /**
   * Checks once now (resolves when that check is done; never rejects) and then every
   * `checkEveryMs` on an unref'd timer. Idempotent.
   */
  async start(): Promise<void> {
    if (this.#periodic.startedOrStopped) return;
    this.#periodic.startTimer();
    await this.#periodic.tick();
  }

  /**
   * One check: publishes when due. A check already under way is joined, not doubled. Never
   * rejects: a failure goes to `onError` and resolves undefined.
   */
  tick(): Promise<CrlRecord | undefined> {
    return this.#periodic.tick();
  }

  /** Stops the timer and waits for a check under way. Idempotent. */
  stop(): Promise<void> {
    return this.#periodic.stop();
  }
}
