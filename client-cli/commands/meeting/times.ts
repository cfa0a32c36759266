/**
 * The times of `sigil meeting schedule`: `--at` as a UTC time (as Sigil shows every time) or with
 * its offset, `--for` as a duration. Pure functions; a bad value is a usage error (exit 2).
 */
import { UsageError } from '../../errors.js';

/** The longest meeting the appliance accepts (server/API.md "Meetings"). */
export const MEETING_MAX_MINUTES = 7 * 24 * 60;

const WHEN = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * `2026-12-03 10:00` or `2026-12-03T10:00[:SS]` in UTC, or with `Z` or an offset such as
 * `+01:00`. A day or hour that does not exist (`2026-02-30`, `24:00`) is refused, not rolled over.
 */
export function parseWhen(text: string): Date {
  const m = WHEN.exec(text.trim());
  if (!m) throw new UsageError(`--at: expected a time such as 2026-12-03 10:00 (UTC) or 2026-12-03T10:00+01:00, not ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s = '00', zone = 'Z'] = m;
  const at = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}${zone}`);
  // Date rolls 2026-02-30 over to March 2nd (and refuses 24:00 only sometimes): compare the fields back.
  const check = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}Z`);
  if (Number.isNaN(at.getTime()) || Number.isNaN(check.getTime()) || check.toISOString().slice(0, 19) !== `${y}-${mo}-${d}T${h}:${mi}:${s}`) {
    throw new UsageError(`--at: ${text} is not a time of the calendar`);
  }
  return at;
}

/** `45m`, `1h`, `1h30m`, `2d` or plain minutes (`90`), at least a minute and at most 7 days; in minutes. `flag` names it in the error. */
export function parseDuration(text: string, flag = '--for'): number {
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m?)?$/.exec(text.trim());
  const minutes = m && m[0] !== '' ? Number(m[1] ?? 0) * 1440 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : NaN;
  if (!Number.isSafeInteger(minutes) || minutes < 1 || minutes > MEETING_MAX_MINUTES) {
    throw new UsageError(`${flag}: expected a duration from 1m to 7d such as 45m, 1h30m or 2d, not ${JSON.stringify(text)}`);
  }
  return minutes;
}
