/**
 * What a control is: one audited property of the host with a stable id, judged from the host's files
 * (and, on a live host, /proc and /sys) into pass/fail with a reason a person can act on.
 */
import type { HardeningConf } from './conf.js';
import type { Host } from './host.js';

/** The verdict of one control. `reason` says what was found (on pass) or what is wrong (on fail). */
export interface ControlResult {
  readonly ok: boolean;
  readonly reason: string;
}

/** What every control receives. */
export interface CheckContext {
  readonly host: Host;
  /** The parsed hardening.conf, or undefined when it is missing or invalid (see `confError`). */
  readonly conf: HardeningConf | undefined;
  /** Why `conf` is undefined. */
  readonly confError: string | undefined;
}

/** One audited property. `id` is stable (tests and scripts match on it). */
export interface Control {
  readonly id: string;
  readonly title: string;
  check(ctx: CheckContext): Promise<ControlResult>;
}

/** Shorthands for results. */
export const pass = (reason: string): ControlResult => ({ ok: true, reason });
export const fail = (reason: string): ControlResult => ({ ok: false, reason });
