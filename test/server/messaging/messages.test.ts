import t from 'tap';
import { harness, newMessageId, sha384b64 } from './harness.js';

const enc = new TextEncoder();

t.test('messages', async (t) => {
  const h = await harness(t);
  const alice = await h.user('m-alice', 'secret');
  const bob = await h.user('m-bob', 'secret');
  const carol = await h.user('m-carol', 'restricted');
  const dave = await h.user('m-dave', 'secret');
  const ab = await h.messaging.direct(alice.principal, bob.login);
  const ac = await h.messaging.direct(alice.principal, carol.login);
  const m = h.messaging;

  await t.test('when a direct conversation is asked for twice then it is the same one', async (t) => {
    const again = await m.direct(bob.principal, alice.login);
    t.equal(again.id, ab.id);
    t.equal(again.label, 'secret');
    t.equal(ac.label, 'restricted', 'label is the lower clearance of the pair');
  });

  await t.test('when a valid message is sent then the reader gets header, signature and body and a receipt comes back', async (t) => {
    const msg = await h.compose(alice, ab.id, 'marker-body-1', { label: 'secret' });
    const r = await m.send(alice.principal, msg);
    t.equal(r.id, msg.id);
    t.equal(r.conversation, ab.id);
    t.ok(r.seq > 0);
    t.ok(r.audit && r.audit.index >= 0, 'receipt names the audit entry');
    const got = await m.message(bob.principal, msg.id);
    t.equal(got.header, msg.header);
    t.equal(got.signature, msg.signature);
    t.equal(Buffer.from(got.body!, 'base64').toString(), 'marker-body-1');
    t.equal(got.seq, r.seq);
  });

  await t.test('when many messages arrive together then each gets a distinct increasing seq', async (t) => {
    const msgs = await Promise.all(Array.from({ length: 50 }, (_, i) => h.compose(alice, ab.id, `batch ${i}`)));
    const rs = await Promise.all(msgs.map((x) => m.send(alice.principal, x)));
    const seqs = rs.map((r) => r.seq);
    t.equal(new Set(seqs).size, 50);
    const page = await m.history(bob.principal, ab.id, { limit: 50 });
    t.same(page.messages.map((x) => x.seq), [...seqs].sort((a, b) => b - a), 'history holds exactly these, newest first');
  });

  await t.test('when the header is not JSON then MESSAGE_HEADER_INVALID', async (t) => {
    const msg = await h.compose(alice, ab.id, 'x');
    await t.rejects(m.send(alice.principal, { ...msg, header: '{nope' }), { code: 'MESSAGE_HEADER_INVALID' });
  });

  await t.test('when the header is not canonical then MESSAGE_HEADER_INVALID', async (t) => {
    const msg = await h.compose(alice, ab.id, 'x');
    const spaced = JSON.stringify(JSON.parse(msg.header), null, 1);
    await t.rejects(m.send(alice.principal, { ...msg, header: spaced }), { code: 'MESSAGE_HEADER_INVALID' });
  });

  await t.test('when a header field is missing then MESSAGE_HEADER_INVALID names it', async (t) => {
    const msg = await h.compose(alice, ab.id, 'x');
    const obj = JSON.parse(msg.header) as Record<string, unknown>;
    delete obj.sentAt;
    const canon = JSON.stringify(Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : 1))));
    await t.rejects(m.send(alice.principal, { ...msg, header: canon }), { code: 'MESSAGE_HEADER_INVALID', message: /sentAt/ });
  });

  await t.test('when the signature is over other bytes then MESSAGE_BAD_SIGNATURE', async (t) => {
    const one = await h.compose(alice, ab.id, 'one');
    const two = await h.compose(alice, ab.id, 'two');
    await t.rejects(m.send(alice.principal, { ...one, signature: two.signature }), { code: 'MESSAGE_BAD_SIGNATURE' });
  });

  await t.test('when the signature was made by another user key then MESSAGE_BAD_SIGNATURE', async (t) => {
    const msg = await h.compose(alice, ab.id, 'forged', {}, { as: dave });
    await t.rejects(m.send(alice.principal, msg), { code: 'MESSAGE_BAD_SIGNATURE' });
  });

  await t.test('when the signature is garbage then MESSAGE_BAD_SIGNATURE', async (t) => {
    const msg = await h.compose(alice, ab.id, 'x');
    await t.rejects(m.send(alice.principal, { ...msg, signature: Buffer.from('garbage').toString('base64') }), {
      code: 'MESSAGE_BAD_SIGNATURE',
    });
  });

  await t.test('when the body or signature is not canonical standard base64 then MESSAGE_HEADER_INVALID names the field', async (t) => {
    const msg = await h.compose(alice, ab.id, 'x');
    const sig = msg.signature;
    // 'x' is one byte: "eA==". "eB==" decodes to the same byte through non-zero padding bits.
    t.equal(msg.body, 'eA==');
    for (const [field, over] of [
      ['body', { body: 'eB==' }],
      ['body', { body: 'eA' }],
      ['body', { body: 'e A==' }],
      ['body', { body: Buffer.from('x').toString('base64url') + '*' }],
      ['signature', { signature: `${sig}\n` }],
      ['signature', { signature: sig.replace(/\+/g, '-').replace(/\//g, '_') + (sig.includes('+') || sig.includes('/') ? '' : '!') }],
    ] as const) {
      await t.rejects(m.send(alice.principal, { ...msg, ...over }), { code: 'MESSAGE_HEADER_INVALID', message: new RegExp(`field ${field}: must be standard base64`) }, JSON.stringify(over).slice(0, 40));
    }
  });

  await t.test('when the signed ESS label differs from the header label then MESSAGE_BAD_SIGNATURE', async (t) => {
    const msg = await h.compose(alice, ab.id, 'x', { label: 'secret' }, { label: 'restricted' });
    await t.rejects(m.send(alice.principal, msg), { code: 'MESSAGE_BAD_SIGNATURE', message: /ESS label/ });
  });

  await t.test('when the body differs from the signed digest then MESSAGE_DIGEST_MISMATCH', async (t) => {
    const msg = await h.compose(alice, ab.id, 'right');
    await t.rejects(m.send(alice.principal, { ...msg, body: Buffer.from('wrong').toString('base64') }), {
      code: 'MESSAGE_DIGEST_MISMATCH',
    });
  });

  await t.test('when the body size differs from the header then MESSAGE_DIGEST_MISMATCH', async (t) => {
    const msg = await h.compose(alice, ab.id, 'right');
    await t.rejects(m.send(alice.principal, { ...msg, body: Buffer.from('longer body').toString('base64') }), {
      code: 'MESSAGE_DIGEST_MISMATCH',
    });
  });

  await t.test('when the label is above the sender clearance then MESSAGE_LABEL_TOO_HIGH', async (t) => {
    const msg = await h.compose(alice, ab.id, 'x', { label: 'top-secret' });
    await t.rejects(m.send(alice.principal, msg), { code: 'MESSAGE_LABEL_TOO_HIGH', message: /clearance/ });
  });

  await t.test('when the label is above the conversation label then MESSAGE_LABEL_TOO_HIGH', async (t) => {
    const msg = await h.compose(alice, ac.id, 'x', { label: 'secret' });
    await t.rejects(m.send(alice.principal, msg), { code: 'MESSAGE_LABEL_TOO_HIGH', message: /conversation/ });
  });

  await t.test('when the same message is sent twice then MESSAGE_REPLAY', async (t) => {
    const msg = await h.compose(alice, ab.id, 'once');
    await m.send(alice.principal, msg);
    await t.rejects(m.send(alice.principal, msg), { code: 'MESSAGE_REPLAY' });
  });

  await t.test('when the same message is sent twice at once then one is a MESSAGE_REPLAY', async (t) => {
    const msg = await h.compose(alice, ab.id, 'twice');
    const rs = await Promise.allSettled([m.send(alice.principal, msg), m.send(alice.principal, msg)]);
    t.equal(rs.filter((r) => r.status === 'fulfilled').length, 1);
    const bad = rs.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    t.equal((bad.reason as { code: string }).code, 'MESSAGE_REPLAY');
  });

  await t.test('when sentAt is outside the skew then MESSAGE_CLOCK_SKEW', async (t) => {
    const msg = await h.compose(alice, ab.id, 'late', { sentAt: new Date(h.clock.now.getTime() - 10 * 60_000).toISOString() });
    await t.rejects(m.send(alice.principal, msg), { code: 'MESSAGE_CLOCK_SKEW' });
  });

  await t.test('when the sender field is someone else then MESSAGE_SENDER_MISMATCH', async (t) => {
    const msg = await h.compose(alice, ab.id, 'x', { sender: bob.login });
    await t.rejects(m.send(alice.principal, msg), { code: 'MESSAGE_SENDER_MISMATCH' });
  });

  await t.test('when the body is over the limit then MESSAGE_TOO_LARGE', async (t) => {
    const big = new Uint8Array(m.config.maxBodyBytes + 1);
    const msg = await h.compose(alice, ab.id, big);
    await t.rejects(m.send(alice.principal, msg), { code: 'MESSAGE_TOO_LARGE' });
  });

  await t.test('when the conversation does not exist then CONVERSATION_NOT_FOUND', async (t) => {
    const msg = await h.compose(alice, newMessageId(), 'x');
    await t.rejects(m.send(alice.principal, msg), { code: 'CONVERSATION_NOT_FOUND' });
  });

  await t.test('when an outsider posts into a direct conversation then CONVERSATION_NOT_FOUND', async (t) => {
    const msg = await h.compose(dave, ab.id, 'x');
    await t.rejects(m.send(dave.principal, msg), { code: 'CONVERSATION_NOT_FOUND' });
    await t.rejects(m.history(dave.principal, ab.id, {}), { code: 'CONVERSATION_NOT_FOUND' });
  });

  await t.test('when an outsider posts into or reads a group then it does not exist for them, its name unsaid', async (t) => {
    const g = await m.createGroup(alice.principal, { name: 'm-group', label: 'restricted' });
    const msg = await h.compose(dave, g.id, 'x');
    type Refusal = Error & { code: string };
    const refusal = (p: Promise<unknown>): Promise<Refusal> =>
      p.then(() => Object.assign(new Error('it was not refused'), { code: 'NONE' }), (e: unknown) => e as Refusal);
    const refused = await refusal(m.send(dave.principal, msg));
    t.match(refused, { code: 'CONVERSATION_NOT_FOUND' });
    t.notMatch(refused.message, /m-group/);
    const unknown = await refusal(m.history(dave.principal, newMessageId(), {}));
    const hidden = await refusal(m.history(dave.principal, g.id, {}));
    t.equal(hidden.code, unknown.code, 'the same answer as for an id that does not exist');
    t.equal(hidden.message.replace(g.id, 'ID'), unknown.message.replace(/conversation \S+/, 'conversation ID'));
    const officer = await h.user('m-outside-officer', 'secret', 'officer');
    await t.rejects(m.history(officer.principal, g.id, {}), { code: 'NOT_A_MEMBER' }, 'an officer, who sees every group, is told they are not in it');
  });

  await t.test('when a message id is unknown then MESSAGE_NOT_FOUND', async (t) => {
    await t.rejects(m.message(alice.principal, newMessageId()), { code: 'MESSAGE_NOT_FOUND' });
  });

  await t.test('when a reader is below a message label then it is never returned', async (t) => {
    const g = await m.createGroup(alice.principal, { name: 'm-mixed', label: 'restricted' });
    await m.addMember(alice.principal, g.name, { login: carol.login });
    await m.addMember(alice.principal, g.name, { login: bob.login });
    // alice (secret) posts a secret message into a restricted group? No: the group label caps it.
    const over = await h.compose(alice, g.id, 'too high', { label: 'secret' });
    await t.rejects(m.send(alice.principal, over), { code: 'MESSAGE_LABEL_TOO_HIGH' });
    // In a secret direct conversation a restricted reader cannot exist; use labels inside a group
    // whose label allows both levels instead.
    const low = await h.compose(alice, g.id, 'low', { label: 'restricted' });
    await m.send(alice.principal, low);
    const page = await m.history(carol.principal, g.id, {});
    t.same(page.messages.map((x) => x.id), [low.id]);
  });

  await t.test('when the clearance filter applies then higher messages are hidden from history, list and lookups', async (t) => {
    const g = await m.createGroup(alice.principal, { name: 'm-secret', label: 'secret' });
    await m.addMember(alice.principal, g.name, { login: bob.login });
    const hi = await h.compose(alice, g.id, 'hi', { label: 'secret' });
    await m.send(alice.principal, hi);
    // Bob's certificate is re-issued at a lower clearance (as after a clearance change).
    const { cert } = await h.ca.staff(bob.login, 'restricted');
    const lowBob = { ...bob.principal, clearance: 'restricted' as const, certificate: cert };
    const page = await m.history(lowBob, g.id, {});
    t.same(page.messages, []);
    await t.rejects(m.message(lowBob, hi.id), { code: 'MESSAGE_NOT_FOUND' });
    const list = await m.conversations(lowBob);
    t.equal(list.find((c) => c.id === g.id)?.unread, 0);
    const full = await m.conversations(bob.principal);
    t.equal(full.find((c) => c.id === g.id)?.unread, 1);
    // A read mark that passes a message above the reader's clearance is no receipt for it.
    const r = await m.history(alice.principal, g.id, {});
    await m.markRead(lowBob, g.id, r.messages[0]!.seq);
    t.same((await m.receipts(alice.principal, hi.id)).read.map((x) => x.login), [bob.login], 'control: counted while cleared');
    h.people.set(bob.login, { ...h.people.get(bob.login)!, certificateClearance: 'restricted' });
    t.same((await m.receipts(alice.principal, hi.id)).read, [], 'not counted once the reader is below the label');
    h.people.set(bob.login, { ...h.people.get(bob.login)!, certificateClearance: 'secret' });
  });

  await t.test('when history is paged then pages do not overlap and end', async (t) => {
    const conv = await m.direct(bob.principal, dave.login);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const x = await h.compose(bob, conv.id, `page ${i}`);
      await m.send(bob.principal, x);
      ids.push(x.id);
    }
    const p1 = await m.history(dave.principal, conv.id, { limit: 3 });
    t.same(p1.messages.map((x) => x.id), ids.slice(4).reverse());
    const p2 = await m.history(dave.principal, conv.id, { limit: 3, before: p1.nextBefore! });
    const p3 = await m.history(dave.principal, conv.id, { limit: 3, before: p2.nextBefore! });
    t.same(p3.messages.map((x) => x.id), [ids[0]]);
    t.equal(p3.nextBefore, undefined);
  });

  await t.test('when a reader reads then unread drops and the sender sees delivery and read receipts', async (t) => {
    const conv = await m.direct(carol.principal, dave.login);
    const x = await h.compose(carol, conv.id, 'receipt me');
    const r = await m.send(carol.principal, x);
    t.equal((await m.conversations(dave.principal)).find((c) => c.id === conv.id)?.unread, 1);
    let rc = await m.receipts(carol.principal, x.id);
    t.same(rc, { delivered: [], read: [] });
    h.clock.now = new Date(h.clock.now.getTime() + 1000);
    await m.history(dave.principal, conv.id, {});
    rc = await m.receipts(carol.principal, x.id);
    t.same(rc.delivered.map((d) => d.login), [dave.login]);
    t.same(rc.read, []);
    await m.markRead(dave.principal, conv.id, r.seq);
    rc = await m.receipts(carol.principal, x.id);
    t.same(rc.read.map((d) => d.login), [dave.login]);
    t.equal((await m.conversations(dave.principal)).find((c) => c.id === conv.id)?.unread, 0);
    await t.rejects(m.receipts(dave.principal, x.id), { code: 'FORBIDDEN' });
  });

  await t.test('when a sender has left, or an officer is not cleared, then their receipts are not seen; a read mark stops at the newest message', async (t) => {
    const owner = await h.user('m-owner', 'secret');
    const leaver = await h.user('m-leaver', 'secret');
    const later = await h.user('m-later', 'secret');
    const lowOfficer = await h.user('m-low-officer', 'restricted', 'officer');
    const g = await m.createGroup(owner.principal, { name: 'm-receipts', label: 'secret' });
    await m.addMember(owner.principal, g.name, { login: leaver.login });
    const sent = await h.compose(leaver, g.id, 'before I leave', { label: 'secret' });
    const r = await m.send(leaver.principal, sent);
    t.ok(await m.receipts(leaver.principal, sent.id), 'control: the sender sees them while a member');
    await t.rejects(m.receipts(lowOfficer.principal, sent.id), { code: 'MESSAGE_NOT_FOUND' }, 'an officer below the label learns nothing, not even that it exists');
    await m.removeMember(leaver.principal, g.name, leaver.login);
    await m.addMember(owner.principal, g.name, { login: later.login });
    // Live: who joins later and reads is no longer pushed to the removed sender.
    const subscription = m.subscribe(leaver.principal);
    t.teardown(() => subscription.close());
    await m.markRead(later.principal, g.id, r.seq);
    t.equal(subscription.queued, 0, 'no live receipt for a sender who left');
    await t.rejects(m.receipts(leaver.principal, sent.id), { code: 'MESSAGE_NOT_FOUND' }, 'nor by asking');
    t.same((await m.receipts(owner.principal, sent.id).catch((e: { code: string }) => e.code)), 'FORBIDDEN', 'control: members other than the sender never see them');
    // A read mark far ahead of the conversation stops at its newest message.
    await m.markRead(owner.principal, g.id, Number.MAX_SAFE_INTEGER);
    const next = await h.compose(later, g.id, 'after the forged mark');
    await m.send(later.principal, next);
    t.same((await m.receipts(later.principal, next.id)).read, [], 'a message sent after it is not read by the owner');
    t.equal((await m.conversations(owner.principal)).find((c) => c.id === g.id)?.unread, 1, 'and counts as unread');
  });

  await t.test('when an owner would make the last owner a plain member then MEMBERSHIP_CONFLICT; a clearance too low is not named', async (t) => {
    const owner = await h.user('m-solo', 'secret');
    const g = await m.createGroup(owner.principal, { name: 'm-solo', label: 'secret' });
    await t.rejects(m.addMember(owner.principal, g.name, { login: owner.login, role: 'member' }), { code: 'MEMBERSHIP_CONFLICT', message: /last owner/ });
    t.match((await m.group(owner.principal, g.name)).members, [{ login: owner.login, role: 'owner' }]);
    await t.rejects(m.addMember(owner.principal, g.name, { login: carol.login }), {
      code: 'CLEARANCE_TOO_LOW',
      message: `${carol.login}'s certificate clearance is below group m-solo's label secret`,
    });
  });

  await t.test('when the header has an unknown field then MESSAGE_HEADER_INVALID', async (t) => {
    const body = enc.encode('x');
    const text = JSON.stringify({
      attachments: [],
      body: { sha384: await sha384b64(body), size: 1 },
      conversation: ab.id,
      extra: 1,
      id: newMessageId(),
      label: 'restricted',
      purpose: 'sigil-message',
      replyTo: null,
      sender: alice.login,
      sentAt: h.clock.now.toISOString(),
      urgent: false,
      v: 1,
    });
    await t.rejects(m.send(alice.principal, { header: text, signature: 'AAAA', body: 'eA==' }), {
      code: 'MESSAGE_HEADER_INVALID',
    });
  });
});
