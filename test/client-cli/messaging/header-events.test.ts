/**
 * The header the CLI signs is byte-identical to what the server accepts (server/messaging/header.ts
 * parses it, and its own canonical form equals ours), the deletion statement too; and the SSE
 * parser handles split chunks, comments, CRLF and multi-line data as the event-stream format says.
 */
import fc from 'fast-check';
import t from 'tap';
import { canonicalJson } from '../../../pki/canonical-json.js';
import { buildHeader, deleteStatement, newId, parseHeader, wordsProblem } from '../../../client-cli/messaging/header.js';
import { SseParser } from '../../../client-cli/messaging/events.js';
import { canonicalHeader, parseDeleteStatement, parseMessageHeader, wordsProblem as serverWordsProblem } from '../../../server/messaging/header.js';

t.test('when the CLI builds a header then the server parses it and its canonical form is the same bytes', async (t) => {
  const body = new TextEncoder().encode('Grüße — 14:00');
  const { header, text } = await buildHeader({
    conversation: newId(),
    sender: 'alee',
    label: 'top-secret',
    body,
    attachments: [{ id: newId(), name: 'report.pdf', sha384: 'A'.repeat(64), size: 3 }],
    replyTo: newId(),
    urgent: true,
    sentAt: new Date('2026-11-22T10:01:02.345Z'),
  });
  const parsed = parseMessageHeader(text);
  t.same(parsed, header);
  t.equal(canonicalHeader(parsed), text);
  t.equal(header.body.size, body.length, 'size in bytes, not characters');
  t.match(text, /^\{"attachments":\[.*\],"body":\{"sha384":".{64}","size":\d+\},"conversation":/);
  t.same(parseHeader(text), { ok: true, header });
});

t.test('when the CLI builds a meeting header then the server parses it and both hold the same meeting rules', async (t) => {
  const invite = { kind: 'invite' as const, title: 'Budget review', start: '2026-12-03T10:00:00.000Z', end: '2026-12-03T10:45:00.000Z', place: 'Room 4.12' };
  const { header, text } = await buildHeader({ conversation: newId(), sender: 'alee', label: 'secret', body: new Uint8Array(), meeting: invite });
  t.same(parseMessageHeader(text), header);
  t.equal(canonicalHeader(parseMessageHeader(text)), text);
  t.match(text, /"label":"secret","meeting":\{"end":"2026-12-03T10:45:00.000Z","kind":"invite","place":"Room 4.12","start":.*,"title":"Budget review"\},"purpose":/);
  const plain = await buildHeader({ conversation: newId(), sender: 'alee', label: 'secret', body: new Uint8Array() });
  t.notMatch(plain.text, /meeting/, 'a message without a meeting has no meeting key');
  const bad = [
    ['{"end":"2026-12-03T10:00:00.000Z","kind":"invite","place":null,"start":"2026-12-03T10:00:00.000Z","title":"T"}', /must end after it starts/],
    ['{"end":"2026-12-10T10:00:01.000Z","kind":"invite","place":null,"start":"2026-12-03T10:00:00.000Z","title":"T"}', /at most 7 days/],
    ['{"answer":"accept","kind":"answer"}', /must name its invitation/],
    ['{"kind":"cancel"}', /must name its invitation/],
    ['{"answer":"maybe","kind":"answer"}', /meeting/],
    ['{"kind":"poll"}', /meeting/],
    ['{"kind":"cancel","why":"x"}', /meeting/],
    ['{"end":"2026-12-03T11:00:00.000Z","kind":"invite","place":"","start":"2026-12-03T10:00:00.000Z","title":"T"}', /meeting/],
  ] as const;
  for (const [meeting, why] of bad) {
    const forged = plain.text.replace('"label":"secret",', `"label":"secret","meeting":${meeting},`);
    t.throws(() => parseMessageHeader(forged), { name: 'HeaderInvalidError', message: why }, meeting);
    t.match(parseHeader(forged), { ok: false, detail: /header field meeting/ }, `the CLI refuses it too: ${meeting}`);
  }
  await t.rejects(buildHeader({ conversation: newId(), sender: 'alee', label: 'secret', body: new Uint8Array(), meeting: { kind: 'cancel' } }), /must name its invitation/);
});

t.test('when a header carries any JSON as its meeting then both parsers accept or refuse it alike, never otherwise', async (t) => {
  const plain = await buildHeader({ conversation: newId(), sender: 'alee', label: 'secret', body: new Uint8Array() });
  const replyTo = newId();
  const time = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
  const meeting = fc.oneof(
    fc.record({ kind: fc.constant('invite'), title: fc.string({ maxLength: 210 }), start: time, end: time, place: fc.option(fc.string({ maxLength: 210 })) }),
    fc.record({ kind: fc.constantFrom('answer', 'cancel', 'invite', 'poll'), answer: fc.constantFrom('accept', 'decline', 'tentative', 'maybe') }, { requiredKeys: ['kind'] }),
    fc.jsonValue({ maxDepth: 2 }),
  );
  fc.assert(
    fc.property(meeting, fc.boolean(), (m, withReply) => {
      const value = { ...(JSON.parse(plain.text) as object), meeting: m, replyTo: withReply ? replyTo : null };
      const text = canonicalJson(value);
      let server: 'ok' | 'refused';
      try {
        parseMessageHeader(text);
        server = 'ok';
      } catch (e) {
        if ((e as Error).name !== 'HeaderInvalidError') throw e;
        server = 'refused';
      }
      const cli = parseHeader(text).ok ? 'ok' : 'refused';
      return server === cli;
    }),
    { numRuns: 2000 },
  );
  t.pass('2,000 meetings: same verdict on both sides, only HeaderInvalidError');
});

t.test('when file names, titles and places hold any characters then the CLI and the appliance judge their words alike', async (t) => {
  // Controls, breaks and bidi controls among ordinary text, so that both verdicts occur often.
  const special = fc.constantFrom('\n', '\t', '\r', '\u0000', '\u001b', '\u007f', '\u0085', '\u009f', '\u2028', '\u2029', '\u202a', '\u202e', '\u2066', '\u2069', '\u200e', '\u00a0', ' ', 'é', '東');
  const words = fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 3 }), special), { maxLength: 6 }).map((parts) => parts.join(''));
  let refused = 0;
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.array(words, { maxLength: 3 }), words, fc.option(words), (names, title, place) => {
        const header = { attachments: names.map((name) => ({ name })), meeting: { kind: 'invite', title, place } };
        const cli = wordsProblem(header);
        if (cli !== undefined) refused++;
        return cli === serverWordsProblem(header);
      }),
      { numRuns: 3000, seed: 11 },
    ),
  );
  t.ok(refused > 100 && refused < 2900, `both verdicts tried (${refused} of 3000 refused)`);
  t.match(wordsProblem({ attachments: [{ name: 'a\nb' }] }), /^field attachments\.0\.name: /);
  t.equal(wordsProblem({ attachments: [{ name: 'Отчёт 2026 (final).pdf' }], meeting: { kind: 'invite', title: 'Budget — Q3', place: null } }), undefined);
});

t.test('when a header has an unknown field then the CLI parser refuses it as the server does', async (t) => {
  const { text } = await buildHeader({ conversation: newId(), sender: 'alee', label: 'secret', body: new Uint8Array() });
  const extra = text.replace('"v":1}', '"v":1,"x":1}');
  t.match(parseHeader(extra), { ok: false, detail: /header field/ });
  t.throws(() => parseMessageHeader(extra));
});

t.test('when the CLI builds a deletion statement then the server accepts it for that target and reason', async (t) => {
  const s = deleteStatement('message:' + 'a'.repeat(22), 'wrong person', new Date('2026-11-22T10:00:00.000Z'));
  t.equal(s, '{"at":"2026-11-22T10:00:00.000Z","purpose":"sigil-delete","reason":"wrong person","target":"message:aaaaaaaaaaaaaaaaaaaaaa"}');
  t.match(parseDeleteStatement(s, { target: 'message:' + 'a'.repeat(22), reason: 'wrong person' }), { purpose: 'sigil-delete' });
});

t.test('when ids are made then they are 22 characters of base64url and differ', async (t) => {
  const a = newId();
  t.match(a, /^[A-Za-z0-9_-]{22}$/);
  t.not(a, newId());
  t.equal(newId(() => new Uint8Array(16)), 'AAAAAAAAAAAAAAAAAAAAAA');
});

t.test('when an id would begin with "-" then it begins with "_", so a command line never reads it as an option', async (t) => {
  // 0xF8 puts 62 ('-' in base64url) in the first six bits.
  const dash = (n: number): Uint8Array => new Uint8Array(n).fill(0xf8);
  t.equal(Buffer.from(dash(16)).toString('base64url')[0], '-', 'these bytes encode with a leading "-"');
  const id = newId(dash);
  t.equal(id[0], '_');
  t.equal(id.slice(1), Buffer.from(dash(16)).toString('base64url').slice(1), 'the rest unchanged');
  t.match(id, /^[A-Za-z0-9_-]{22}$/);
  t.notOk(Array.from({ length: 2000 }, () => newId()).some((x) => x.startsWith('-')), 'none of 2,000 fresh ids');
});

t.test('when SSE text arrives in pieces then whole events come out in order', async (t) => {
  const p = new SseParser();
  t.same(p.push(': keep-alive\n\nevent: mess'), []);
  t.same(p.push('age\r\nid: 7\r\ndata: {"a":'), []);
  t.same(p.push('1}\r\n\r\n'), [{ event: 'message', id: '7', data: '{"a":1}' }]);
  t.same(p.push('event: ready\ndata: line1\ndata:line2\n\ndata\n\n'), [
    { event: 'ready', data: 'line1\nline2' },
    { event: 'message', data: '' },
  ]);
  t.same(p.push('event: x\n\n'), [], 'an event without data is not dispatched');
});

t.test('when a CRLF is split between two chunks then it ends one line, not two', async (t) => {
  const p = new SseParser();
  t.same(p.push('data: a\r'), []);
  t.same(p.push('\ndata: b\r'), [], 'the LF after the CR is not a blank line');
  t.same(p.push('\n\r'), []);
  t.same(p.push('\n'), [{ event: 'message', data: 'a\nb' }]);
  t.same(p.push('data: c\r\rdata: d\n\n'), [{ event: 'message', data: 'c' }, { event: 'message', data: 'd' }], 'CR alone still ends a line');
});

t.test('when one event grows past the limit then the parser refuses it instead of holding it all', async (t) => {
  const endless = new SseParser(1000);
  endless.push('data: ');
  t.throws(() => {
    for (let i = 0; i < 20; i++) endless.push('x'.repeat(100));
  }, { code: 'STREAM_FAILED', message: /more than 1000 characters/ }, 'a line without an end');
  const many = new SseParser(1000);
  t.throws(() => {
    for (let i = 0; i < 20; i++) many.push(`data: ${'y'.repeat(90)}\n`);
  }, { code: 'STREAM_FAILED' }, 'data lines without the blank line that ends the event');
  const fine = new SseParser(1000);
  for (let i = 0; i < 50; i++) t.same(fine.push(`data: ${'z'.repeat(90)}\n\n`).length, 1);
  t.pass('events under the limit pass however many come');
});
