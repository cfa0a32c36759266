/**
 * The test harnesses' message ids are made as the product makes them: never with a leading '-'.
 * CI once failed `sigil meeting answer <id> accept` in test/client-cli/messaging/meeting.test.ts
 * because a harness-made id began with '-', which commander read as an option (one id in 64).
 */
import t from 'tap';
import { newMessageId } from './harness.js';

t.test('when the harness makes message ids then none begins with a dash, and all are 22 base64url characters', async (t) => {
  const ids = Array.from({ length: 5000 }, newMessageId); // ~1 - (63/64)^5000: a leading '-' would show
  t.notOk(ids.some((id) => id.startsWith('-')));
  t.ok(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id)));
  t.equal(new Set(ids).size, ids.length);
});
