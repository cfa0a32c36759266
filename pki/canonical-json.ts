/**
 * RFC 8785 (JCS) canonical JSON: what Sigil signs (message headers, deletion and login statements)
 * and what its audit leaves hash. The `canonicalize` package is the reference; this module puts a
 * fast path in front of it.
 *
 * Why: the server checks the canonical form of every message header it accepts and writes the
 * canonical text of every audit entry, and `canonicalize` builds its text one template literal
 * at a time and sorts every object's keys — a quarter of everything the server's event loop
 * allocated under a message load (bench/README.md, "Seventeenth session"). For a value whose
 * objects already list their keys in sorted order, JCS's text is exactly what `JSON.stringify`
 * writes (RFC 8785 §3.2.2 and §3.2.3 take the ECMAScript serialisation of strings and numbers;
 * §3.2.3 sorts keys by UTF-16 code units, as `<` compares strings), so one walk that confirms the
 * order, then one native call, gives the same bytes. Anything else goes to `canonicalize`.
 */
import canonicalizeCjs from 'canonicalize';

type Canonicalize = (input: unknown) => string | undefined;
// CommonJS module typed as `export default`: under NodeNext the default import is module.exports.
const cjs = canonicalizeCjs as unknown as Canonicalize | { default: Canonicalize };
const canonicalize: Canonicalize = typeof cjs === 'function' ? cjs : cjs.default;

/** A value that RFC 8785 cannot serialise (NaN, ±Infinity, a BigInt, a cycle, or nothing at all). */
export class CanonicalJsonError extends Error {
  override name = 'CanonicalJsonError';
}

/**
 * True if `value` is plain JSON data (null, booleans, finite numbers, strings, arrays, and objects
 * of Object.prototype or none) in which every object's own keys come in ascending UTF-16 order.
 * Anything else — a Date, a toJSON, undefined, a function — is left to `canonicalize`.
 */
function sortedPlainJson(value: unknown, depth: number): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || depth > 256) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!sortedPlainJson(item, depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  if ('toJSON' in value) return false;
  let previous: string | undefined;
  for (const key of Object.keys(value)) {
    // JSON.stringify lists integer-like keys first, in numeric order; `<` keeps the JCS order.
    if (previous !== undefined && !(previous < key)) return false;
    previous = key;
    if (!sortedPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/** `canonicalize`'s text, or the CanonicalJsonError saying why there is none. */
function viaPackage(value: unknown): string | CanonicalJsonError {
  try {
    return canonicalize(value) ?? new CanonicalJsonError('not serialisable as canonical JSON');
  } catch (cause) {
    return new CanonicalJsonError(`not serialisable as canonical JSON: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** The RFC 8785 canonical text of `value`. @throws CanonicalJsonError when it has none. */
export function canonicalJson(value: unknown): string {
  if (sortedPlainJson(value, 0)) return JSON.stringify(value);
  const text = viaPackage(value);
  if (text instanceof CanonicalJsonError) throw text;
  return text;
}

/** What {@link readCanonicalJson} found. */
export type CanonicalRead = { ok: true; value: unknown } | { ok: false; reason: 'not-json' | 'not-canonical' };

/**
 * Parses `text` and says whether it is exactly the canonical text of what it says (what a signer
 * signed is what a reader parses). Never throws: a number out of range (`1e999` parses to
 * Infinity, which has no canonical text) is `not-canonical`.
 */
export function readCanonicalJson(text: string): CanonicalRead {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not-json' };
  }
  // Sorted keys and JSON.stringify's own text: canonical. Unsorted keys: never canonical, since
  // canonical text lists them sorted and JSON.parse keeps the text's order — except integer-like
  // keys, which JSON.parse lists numerically; canonicalize decides those.
  const canonical = sortedPlainJson(value, 0) ? JSON.stringify(value) : viaPackage(value);
  return canonical === text ? { ok: true, value } : { ok: false, reason: 'not-canonical' };
}
