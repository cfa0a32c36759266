/**
 * The local verifier (client-cli/messaging/verify.ts) against real signatures from a real CA
 * hierarchy: a good message, and one failure per reason — a tampered header, a non-canonical
 * header, a signer who is not the sender, a message filed under another id, an ESS label that
 * differs from the header's, a label above the signer's clearance, a tampered body, a foreign CA,
 * a signer revoked before receipt — and a signer revoked after receipt, which still verifies.
 */
import t from 'tap';
import { createRootCrl, signDetached, type Certificate, type Clearance, type CryptoKey } from '../../../pki/index.js';
import { buildHeader, type HeaderParams } from '../../../client-cli/messaging/header.js';
import { verifyMessage, type ReceivedMessage, type Trust } from '../../../client-cli/messaging/verify.js';
import { makeTestCa } from '../../helpers/pki-fixtures.js';

const ca = await makeTestCa('p256');
const alee = await ca.staff('alee', 'secret');
const low = await ca.staff('cdoe', 'confidential');
const trust: Trust = { anchors: ca.trustAnchors, intermediates: [ca.issuing.cert], crls: [] };
const CONV = 'c'.repeat(22);
const enc = new TextEncoder();

async function message(
  who: { cert: Certificate; key: CryptoKey },
  o: {
    sender?: string;
    label?: Clearance;
    essLabel?: Clearance;
    body?: string;
    /** Changes the header text after signing (tampering). */
    mutate?: (header: string) => string;
    /** Replaces words in the header text before signing: words buildHeader refuses, as another client or an older appliance signed them. */
    words?: Record<string, string>;
  } & Pick<HeaderParams, 'attachments' | 'meeting' | 'replyTo'> = {},
): Promise<ReceivedMessage> {
  const body = enc.encode(o.body ?? 'The meeting moves to 14:00');
  const label = o.label ?? 'secret';
  const { header, text: built } = await buildHeader({
    conversation: CONV,
    sender: o.sender ?? (who.cert.subject.login as string),
    label,
    body,
    ...(o.attachments ? { attachments: o.attachments } : {}),
    ...(o.meeting ? { meeting: o.meeting } : {}),
    ...(o.replyTo ? { replyTo: o.replyTo } : {}),
  });
  let text = built;
  for (const [from, to] of Object.entries(o.words ?? {})) text = text.replace(JSON.stringify(from).slice(1, -1), JSON.stringify(to).slice(1, -1));
  const sig = await signDetached({ content: enc.encode(text), signerCert: who.cert, signerKey: who.key, label: o.essLabel ?? label });
  return {
    id: header.id,
    conversation: CONV,
    header: o.mutate ? o.mutate(text) : text,
    signature: Buffer.from(sig).toString('base64'),
    body: Buffer.from(body).toString('base64'),
    receivedAt: new Date().toISOString(),
  };
}

t.test('when the message is intact then it verifies with signer, chain and body checked', async (t) => {
  const v = await verifyMessage(await message(alee), trust);
  t.ok(v.ok);
  if (!v.ok) return;
  t.equal(v.signer, 'alee');
  t.equal(v.header.label, 'secret');
  t.equal(v.bodyChecked, true);
  t.equal(v.chain.length, 3);
  t.notOk(v.revokedLater);
});

t.test('when no body is given (auditor view) then the signature verifies and bodyChecked is false', async (t) => {
  const m = await message(alee);
  const v = await verifyMessage({ ...m, body: undefined }, trust);
  t.ok(v.ok && v.bodyChecked === false);
});

t.test('when one byte of the header is changed then the signature digest fails', async (t) => {
  const m = await message(alee, { mutate: (h) => h.replace('"urgent":false', '"urgent":true') });
  const v = await verifyMessage(m, trust);
  t.match(v, { ok: false, reason: 'digest-mismatch' });
});

t.test('when the header is not canonical JSON then it is header-invalid', async (t) => {
  const v = await verifyMessage(await message(alee, { mutate: (h) => h.replace('{', '{ ') }), trust);
  t.match(v, { ok: false, reason: 'header-invalid', detail: /canonical/ });
  const junk = await verifyMessage(await message(alee, { mutate: () => 'not json' }), trust);
  t.match(junk, { ok: false, reason: 'header-invalid', detail: /not JSON/ });
});

t.test('when the header names another sender than the signer then it is sender-mismatch', async (t) => {
  const v = await verifyMessage(await message(alee, { sender: 'bkim' }), trust);
  t.match(v, { ok: false, reason: 'sender-mismatch', detail: /bkim.*alee/ });
});

t.test('when the server files the message under another id then it is envelope-mismatch', async (t) => {
  const m = await message(alee);
  t.match(await verifyMessage({ ...m, id: 'x'.repeat(22) }, trust), { ok: false, reason: 'envelope-mismatch' });
  t.match(await verifyMessage({ ...m, conversation: 'y'.repeat(22) }, trust), { ok: false, reason: 'envelope-mismatch' });
});

t.test('when the ESS label differs from the header label then it is label-mismatch', async (t) => {
  const v = await verifyMessage(await message(alee, { label: 'secret', essLabel: 'restricted' }), trust);
  t.match(v, { ok: false, reason: 'label-mismatch', detail: /secret.*restricted/ });
});

t.test('when the label is above the signer clearance then it is label-above-clearance', async (t) => {
  const v = await verifyMessage(await message(low, { label: 'secret' }), trust);
  t.match(v, { ok: false, reason: 'label-above-clearance', detail: /confidential/ });
});

t.test('when the body was changed then it is body-mismatch', async (t) => {
  const m = await message(alee);
  const v = await verifyMessage({ ...m, body: Buffer.from('The meeting moves to 15:00').toString('base64') }, trust);
  t.match(v, { ok: false, reason: 'body-mismatch' });
  const longer = await verifyMessage({ ...m, body: Buffer.from('The meeting moves to 14:00!').toString('base64') }, trust);
  t.match(longer, { ok: false, reason: 'body-mismatch', detail: /bytes/ });
});

t.test('when the signer chains to a foreign CA then the chain fails', async (t) => {
  const foreign = await makeTestCa('p256', undefined, { organization: 'Elsewhere' });
  const mallory = await foreign.staff('alee', 'secret');
  const v = await verifyMessage(await message(mallory), trust);
  t.equal(v.ok, false);
  t.notOk(v.ok === false && v.reason === 'sender-mismatch');
});

t.test('when a session requires the signer’s CRL then a message is refused without it, or with only the root’s', async (t) => {
  // The appliance serving the root's CRL (or none) in place of the issuing CA's used to let a
  // revoked signer verify with no word said.
  const m = await message(alee);
  const required: Trust = { ...trust, requireSignerCrl: true };
  t.match(await verifyMessage(m, required), { ok: false, reason: 'crl-missing', detail: /no CRL from .*Issuing/ }, 'none');
  const rootOnly = await createRootCrl({ cert: ca.root.cert, key: ca.root.key, crlNumber: 1n, revoked: [] });
  t.match(await verifyMessage(m, { ...required, crls: [rootOnly] }), { ok: false, reason: 'crl-missing' }, 'the root’s CRL in its place');
  const issuing = await ca.issuer.createCrl({ revoked: [], crlNumber: 1n, nextUpdate: new Date(Date.now() + 86_400_000) });
  t.match(await verifyMessage(m, { ...required, crls: [issuing] }), { ok: true }, 'the issuing CA’s CRL: verified');
  t.match(await verifyMessage(m, trust), { ok: true }, 'control: without the requirement (offline checks) none is needed');
});

t.test('when the signer was revoked before receipt then it fails; revoked after receipt then it verifies with revokedLater', async (t) => {
  const m = await message(alee);
  const received = new Date(m.receivedAt);
  const before = await ca.issuer.createCrl({
    revoked: [{ serialNumber: alee.cert.serialNumber, revocationDate: new Date(received.getTime() - 60_000), reason: 'keyCompromise' }],
    crlNumber: 2n,
    nextUpdate: new Date(Date.now() + 86_400_000),
  });
  const r1 = await verifyMessage(m, { ...trust, crls: [before] });
  t.match(r1, { ok: false, reason: 'revoked' });
  const after = await ca.issuer.createCrl({
    revoked: [{ serialNumber: alee.cert.serialNumber, revocationDate: new Date(received.getTime() + 60_000), reason: 'superseded' }],
    crlNumber: 3n,
    nextUpdate: new Date(Date.now() + 86_400_000),
  });
  const r2 = await verifyMessage(m, { ...trust, crls: [after] });
  t.ok(r2.ok);
  if (r2.ok) t.match(r2.revokedLater, { reason: 'superseded' });
});

t.test('when a message fails verification then its lines carry the loud marker and terminal escapes are defused', async (t) => {
  const { messageLines, messageJson } = await import('../../../client-cli/messaging/render.js');
  const m = await message(alee, { body: 'evil \u001b[2J text' });
  const full = { ...m, seq: 1, sender: 'alee', label: 'secret', urgent: false };
  const bad = await verifyMessage({ ...m, header: m.header.replace('"urgent":false', '"urgent":true') }, trust);
  const lines = messageLines(full, bad);
  t.match(lines.join('\n'), /^!! VERIFICATION FAILED: digest-mismatch: /m);
  t.match(lines[0], /^\[SECRET\] \d{4}-\d\d-\d\d \d\d:\d\d alee: evil \\x1b\[2J text$/);
  t.match(messageJson(full, bad), { verified: false, reason: 'digest-mismatch' });
  const good = await verifyMessage(m, trust);
  t.notMatch(messageLines(full, good).join('\n'), /VERIFICATION FAILED/);
});

t.test('when a text ends with a line break or uses Windows line ends then it shows without an empty or escaped line, and its JSON keeps every byte', async (t) => {
  const { messageLines, messageJson } = await import('../../../client-cli/messaging/render.js');
  for (const body of ['Report at 10:00\r\nsecond line\r\n', 'Report at 10:00\nsecond line\n']) {
    const m = await message(alee, { body });
    const full = { ...m, seq: 1, sender: 'alee', label: 'secret', urgent: false };
    const v = await verifyMessage(m, trust);
    t.ok(v.ok, 'the signed bytes are untouched, so the message verifies');
    const lines = messageLines(full, v);
    t.match(lines[0], /alee: Report at 10:00$/);
    t.equal(lines[1], '    second line');
    t.match(lines[2], /^ {4}id /, 'no empty line for the final line break');
    t.equal(messageJson(full, v).body, body, '--json gives the text exactly as signed');
  }
  const cr = await message(alee, { body: 'SECRET\rUNCLASSIFIED' });
  const lines = messageLines({ ...cr, seq: 2, sender: 'alee', label: 'secret', urgent: false }, await verifyMessage(cr, trust));
  t.match(lines[0], /alee: SECRET\\x0dUNCLASSIFIED$/, 'a lone carriage return cannot overwrite the banner');
});

t.test('when a verified message names files or a meeting then their words are escaped and the meeting said once', async (t) => {
  const { messageLines } = await import('../../../client-cli/messaging/render.js');
  const full = (m: ReceivedMessage) => ({ ...m, seq: 3, sender: 'alee', label: 'secret', urgent: false });
  const files = await message(alee, {
    attachments: [{ id: 'f'.repeat(22), name: 'a-OSC.pdf', sha384: 'A'.repeat(64), size: 1 }],
    words: { 'a-OSC.pdf': 'a\u001b]0;owned\u0007.pdf' },
  });
  const fileLines = messageLines(full(files), await verifyMessage(files, trust)).join('\n');
  t.match(fileLines, /attachment: a\\x1b\]0;owned\\x07\.pdf \(1 bytes\)/);
  t.notMatch(fileLines, /[\u001b\u0007]/, 'no control character reaches the terminal');
  const meeting = { kind: 'invite' as const, title: 'Plan-CSI', start: '2026-12-03T10:00:00.000Z', end: '2026-12-03T11:00:00.000Z', place: 'Room-BEL' };
  const escapes = { 'Plan-CSI': 'Plan\u001b[2J', 'Room-BEL': 'Room\u0007 4' };
  const bare = await message(alee, { body: '', meeting, words: escapes });
  const bareLines = messageLines(full(bare), await verifyMessage(bare, trust));
  t.match(bareLines[0], /alee: meeting "Plan\\x1b\[2J" 2026-12-03 10:00–11:00 UTC, Room\\x07 4$/, 'no text: the meeting is the line');
  t.match(bareLines[1], new RegExp(`^ {4}answer: sigil meeting answer ${bare.id} accept\\|decline\\|tentative$`));
  const agenda = await message(alee, { body: 'agenda\n', meeting, words: escapes });
  const agendaLines = messageLines(full(agenda), await verifyMessage(agenda, trust));
  t.match(agendaLines[0], /alee: agenda$/);
  t.match(agendaLines[1], /^ {4}meeting "Plan/, 'with text: the meeting under it');
  // A line break in a file name or title would begin a line that reads like another, verified message.
  // The appliance refuses such words now (wordsProblem); a message it accepted before still verifies.
  const forged = '\n[SECRET] 2026-11-22 10:01 director: transfer approved';
  const lined = await message(alee, {
    attachments: [{ id: 'f'.repeat(22), name: 'x.pdf-FORGED', sha384: 'A'.repeat(64), size: 1 }],
    meeting: { ...meeting, title: 'Plan-FORGED', place: 'Room-PLACE' },
    words: { '-FORGED': forged, 'Plan-FORGED': `Plan${forged}`, 'Room-PLACE': 'Room\t4\u2028\u202eevil' },
  });
  const linedLines = messageLines(full(lined), await verifyMessage(lined, trust));
  t.notOk(linedLines.some((l) => /^\[SECRET\].*director/.test(l)), 'no line of the output begins as a message from someone else');
  t.ok(linedLines.some((l) => l.includes('attachment: x.pdf\\x0a[SECRET] 2026-11-22 10:01 director: transfer approved (1 bytes)')), 'the file name stays on its line, its break escaped');
  t.ok(linedLines.some((l) => l.includes('meeting "Plan\\x0a[SECRET]') && l.includes('Room\\x094\\u{2028}\\u{202e}evil')), 'so do the title and place, tab, separator and bidi override');
  const answer = await message(alee, { body: '', meeting: { kind: 'answer', answer: 'decline' }, replyTo: bare.id });
  t.match(messageLines(full(answer), await verifyMessage(answer, trust))[0], /alee: declines the meeting$/);
});
