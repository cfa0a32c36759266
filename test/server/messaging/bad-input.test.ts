/**
 * Bad input never escapes as anything but a typed messaging error (a clear 4xx at the edge):
 * property tests over mutated headers, bodies and signatures, and nothing half-stored.
 */
import fc from 'fast-check';
import t from 'tap';
import { MESSAGING_STATUS_BY_CODE } from '../../../server/messaging/index.js';
import { harness } from './harness.js';

const codes = new Set(Object.keys(MESSAGING_STATUS_BY_CODE));

t.test('when inputs are mutated at random then every refusal is a typed 4xx messaging error', async (t) => {
  const h = await harness(t);
  const a = await h.user('bi-alice');
  const b = await h.user('bi-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const valid = await h.compose(a, conv.id, 'valid body');
  const header = JSON.parse(valid.header) as Record<string, unknown>;
  const keys = Object.keys(header);
  const rows = async () => (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_messages'))!.n;
  const before = await rows();

  const anyJson = fc.jsonValue({ maxDepth: 2 });
  const mutation = fc.oneof(
    // replace one field's value with arbitrary JSON
    fc.record({ kind: fc.constant('field' as const), key: fc.constantFrom(...keys), value: anyJson }),
    // drop a field
    fc.record({ kind: fc.constant('drop' as const), key: fc.constantFrom(...keys) }),
    // arbitrary header text
    fc.record({ kind: fc.constant('text' as const), text: fc.string({ maxLength: 200 }) }),
    // arbitrary body / signature strings
    fc.record({ kind: fc.constant('body' as const), text: fc.string({ maxLength: 100 }) }),
    fc.record({ kind: fc.constant('sig' as const), text: fc.string({ maxLength: 100 }) }),
    fc.record({ kind: fc.constant('sigbytes' as const), bytes: fc.uint8Array({ maxLength: 300 }) }),
  );

  await fc.assert(
    fc.asyncProperty(mutation, async (mu) => {
      let input = { header: valid.header, signature: valid.signature, body: valid.body };
      const sorted = (o: Record<string, unknown>) =>
        JSON.stringify(Object.fromEntries(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : 1))));
      if (mu.kind === 'field') input = { ...input, header: sorted({ ...header, [mu.key]: mu.value }) };
      else if (mu.kind === 'drop') {
        const copy = { ...header };
        delete copy[mu.key];
        input = { ...input, header: sorted(copy) };
      } else if (mu.kind === 'text') input = { ...input, header: mu.text };
      else if (mu.kind === 'body') input = { ...input, body: mu.text };
      else if (mu.kind === 'sig') input = { ...input, signature: mu.text };
      else input = { ...input, signature: Buffer.from(mu.bytes).toString('base64') };
      if (input.header === valid.header && input.body === valid.body && input.signature === valid.signature) return;
      try {
        await h.messaging.send(a.principal, input);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!code || !codes.has(code)) throw new Error(`untyped refusal ${String(code)}: ${String(err)}`);
        if ((MESSAGING_STATUS_BY_CODE[code] ?? 500) >= 500) throw new Error(`5xx for bad input: ${code}`);
        return;
      }
      throw new Error(`a mutated message was accepted: ${JSON.stringify(mu)}`);
    }),
    { numRuns: 300 },
  );
  t.equal(await rows(), before, 'nothing was stored');
  const ok = await h.messaging.send(a.principal, valid);
  t.equal(ok.id, valid.id, 'control: the unmutated message is accepted');
});

t.test('when a header or deletion statement holds a number JSON cannot keep (1e999) then it is refused as not canonical, not thrown', async (t) => {
  // JSON.parse reads 1e999 as Infinity, which has no RFC 8785 text: canonicalize threw a plain
  // Error there, which left the messaging service untyped (a 500 at the edge).
  const h = await harness(t);
  const a = await h.user('inf-alice');
  const b = await h.user('inf-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const valid = await h.compose(a, conv.id, 'valid body');
  for (const header of [valid.header.replace(/"v":1}$/, '"v":1e999}'), valid.header.replace(/"size":\d+/, '"size":1e999'), '[1e999]', '-1e400']) {
    t.not(header, valid.header);
    await t.rejects(h.messaging.send(a.principal, { ...valid, header }), { code: 'MESSAGE_HEADER_INVALID', message: /canonical form/ }, header);
  }
  const { parseDeleteStatement } = await import('../../../server/messaging/header.js');
  t.throws(() => parseDeleteStatement('{"at":1e999}', { target: 'message:x', reason: 'r' }), { code: 'DELETE_STATEMENT_INVALID', message: /canonical form/ });
  const ok = await h.messaging.send(a.principal, valid);
  t.equal(ok.id, valid.id, 'control: the message itself is accepted');
});
