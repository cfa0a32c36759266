/**
 * Every messaging error code is provoked by some test: each code must appear as an expected
 * `code: 'X'` (or `error.code, 'X'`) in the messaging test files.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import * as errors from '../../../server/messaging/errors.js';

const here = dirname(fileURLToPath(import.meta.url));
const files = [
  ...readdirSync(here).filter((f) => f.endsWith('.test.ts')).map((f) => join(here, f)),
  join(here, '..', 'routes', 'messages-e2e.test.ts'),
  join(here, '..', 'routes', 'events.test.ts'),
];
const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');

t.test('when the error classes are listed then each code has a status and a provoking test', async (t) => {
  const classes = (Object.values(errors) as unknown[]).filter(
    (v): v is new (m: string) => errors.MessagingError =>
      typeof v === 'function' && (v as { prototype: unknown }).prototype instanceof errors.MessagingError,
  );
  t.ok(classes.length >= 20, 'control: the error classes were found');
  for (const C of classes) {
    const e = new C('x');
    t.ok(e.status >= 400 && e.status < 600, `${e.code} has an HTTP status`);
    if (e.code !== 'UNAVAILABLE') t.equal(errors.MESSAGING_STATUS_BY_CODE[e.code], e.status, `${e.code} is in the status table`);
    const provoked = new RegExp(`code: '${e.code}'|code, '${e.code}'`).test(text);
    t.ok(provoked, `${e.code} is provoked by a test`);
  }
});
