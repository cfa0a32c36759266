/**
 * pki/canonical-json.ts against the `canonicalize` package it stands in front of: the same text
 * for every JSON value, and the same verdict on every text (canonical or not), by property tests
 * over arbitrary JSON — integer-like keys, `__proto__`, unicode and escapes included.
 */
import canonicalizeCjs from 'canonicalize';
import fc from 'fast-check';
import t from 'tap';
import { CanonicalJsonError, canonicalJson, readCanonicalJson } from '../../pki/index.js';

const canonicalize = canonicalizeCjs as unknown as (v: unknown) => string | undefined;

/** The reference verdict: JSON, and exactly the canonical text of what it says. */
function reference(text: string): 'ok' | 'not-json' | 'not-canonical' {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not-json';
  }
  try {
    return canonicalize(value) === text ? 'ok' : 'not-canonical';
  } catch {
    return 'not-canonical';
  }
}

const verdict = (text: string): string => {
  const r = readCanonicalJson(text);
  return r.ok ? 'ok' : r.reason;
};

t.test('when any JSON value is serialised then the text is canonicalize’s', async (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      if (canonicalJson(v) !== canonicalize(v)) throw new Error(`differs for ${JSON.stringify(v)}`);
    }),
    { numRuns: 3000 },
  );
  // Values built in code, not parsed: undefined members, Dates (toJSON), nested toJSON, -0.
  const built = [
    { b: 1, a: undefined, c: [undefined, 2] },
    { at: new Date(0), z: { y: 1, x: 2 } },
    { x: { toJSON: () => ({ b: 1, a: 2 }) } },
    { n: -0, m: 1e21, k: 5e-324 },
    Object.assign(Object.create(null), { b: 1, a: 2 }),
  ];
  for (const v of built) t.equal(canonicalJson(v), canonicalize(v), JSON.stringify(v));
});

t.test('when a value has no canonical text then CanonicalJsonError', async (t) => {
  for (const v of [NaN, Infinity, { a: -Infinity }, [1n], undefined]) {
    let thrown: unknown;
    try {
      canonicalJson(v);
    } catch (e) {
      thrown = e;
    }
    t.ok(thrown instanceof CanonicalJsonError, `${String(v)}: ${String(thrown)}`);
  }
});

t.test('when any text is read then the verdict is the reference’s', async (t) => {
  const canonicalTexts = fc.jsonValue().map((v) => canonicalize(v)!);
  const reordered = fc.jsonValue().map((v) => JSON.stringify(v));
  const spaced = fc.jsonValue().map((v) => JSON.stringify(v, null, 1));
  const numbers = fc.constantFrom('1e999', '-1e400', '[1e999]', '{"a":1e999}', '1.0', '1e2', '100', '0.1', '-0', '5e-324', '1E2');
  const keys = fc.constantFrom('{"10":1,"9":2}', '{"9":2,"10":1}', '{"1":1,"a":2}', '{"a":2,"1":1}', '{"__proto__":1}', '{"b":1,"a":2}', '{"a":1,"a":2}', '{"a":2}');
  const escapes = fc.constantFrom('"\\u0041"', '"A"', '"\\ud800"', '"\\/"', '"/"', '"\\u001f"', '"\\u007f"', '"\u007f"', '"é"', '"\\u00e9"');
  fc.assert(
    fc.property(fc.oneof(canonicalTexts, reordered, spaced, numbers, keys, escapes, fc.string({ maxLength: 40 })), (text) => {
      const want = reference(text);
      const got = verdict(text);
      if (got !== want) throw new Error(`${JSON.stringify(text)}: ${got}, reference ${want}`);
    }),
    { numRuns: 5000 },
  );
  t.equal(verdict('{"a":1e999}'), 'not-canonical', 'a number out of range is a refusal, not a throw');
  t.equal(verdict('{"10":1,"9":2}'), 'ok', 'integer-like keys in UTF-16 order are canonical');
  t.equal(verdict('{"9":2,"10":1}'), 'not-canonical');
  t.equal(verdict('{nope'), 'not-json');
});
