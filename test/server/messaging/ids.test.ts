import t from 'tap';
import { randomBytes } from 'node:crypto';
import { newId } from '../../../server/messaging/context.js';

// Ids the server makes (conversations, groups, files, tombstones) are typed on command lines
// (`sigil download <id>`): one beginning with '-' would be read as an option.
t.test('when the server makes an id that would begin with "-" then it begins with "_"', async (t) => {
  const dash = (n: number): Uint8Array => new Uint8Array(n).fill(0xf8); // 62 = '-' in the first six bits
  t.equal(Buffer.from(dash(16)).toString('base64url')[0], '-', 'these bytes encode with a leading "-"');
  const id = newId(dash);
  t.equal(id, `_${Buffer.from(dash(16)).toString('base64url').slice(1)}`);
  t.equal(newId((n) => new Uint8Array(n)), 'AAAAAAAAAAAAAAAAAAAAAA', 'other ids are the plain encoding');
  const many = Array.from({ length: 2000 }, () => newId((n) => randomBytes(n)));
  t.ok(many.every((x) => /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/.test(x)), '2,000 fresh ids: 22 characters, none with a leading "-"');
});
