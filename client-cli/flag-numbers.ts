/**
 * Parsers for numeric flags, given to commander's `.option(flags, text, parser)`: a bad value is
 * a usage error (exit 2) naming the flag and the range, before anything runs. The ranges match the
 * server's (a `--limit 0` the server would refuse with a 400 is refused here, as usage).
 */
import { InvalidArgumentError } from 'commander';

/** A whole number in `min`…`max`, written in plain digits (no sign, exponent or fraction). */
export function wholeNumber(flag: string, min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `${min}–${max}`;
      throw new InvalidArgumentError(`${flag} expects a whole number ${range}`);
    }
    return n;
  };
}
