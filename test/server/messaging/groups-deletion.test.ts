import t from 'tap';
import { canonicalDeleteStatement } from '../../../server/messaging/index.js';
import { harness } from './harness.js';

t.test('groups', async (t) => {
  const h = await harness(t);
  const m = h.messaging;
  const owner = await h.user('g-owner', 'secret');
  const low = await h.user('g-low', 'restricted');
  const mem = await h.user('g-mem', 'secret');
  const officer = await h.user('g-officer', 'secret', 'officer');
  const auditor = await h.user('g-auditor', 'top-secret', 'auditor');

  await t.test('when a group is created then the creator owns it and it lists', async (t) => {
    const g = await m.createGroup(owner.principal, { name: 'g-one', label: 'secret', retentionDays: 30 });
    t.same(g.members, [{ login: owner.login, role: 'owner' }]);
    t.equal(g.retentionDays, 30);
    t.same((await m.groups(owner.principal)).map((x) => x.name), ['g-one']);
    t.same((await m.groups(mem.principal)).map((x) => x.name), []);
    t.ok((await m.groups(officer.principal)).some((x) => x.name === 'g-one'), 'officers see all groups');
  });

  await t.test('when the name is taken then GROUP_EXISTS', async (t) => {
    await t.rejects(m.createGroup(mem.principal, { name: 'g-one', label: 'restricted' }), { code: 'GROUP_EXISTS' });
  });

  await t.test('when the creator is below the label then CLEARANCE_TOO_LOW', async (t) => {
    await t.rejects(m.createGroup(low.principal, { name: 'g-two', label: 'secret' }), { code: 'CLEARANCE_TOO_LOW' });
  });

  await t.test('when a member below the label is added then CLEARANCE_TOO_LOW', async (t) => {
    await t.rejects(m.addMember(owner.principal, 'g-one', { login: low.login }), { code: 'CLEARANCE_TOO_LOW' });
  });

  await t.test('when an unknown login is added then PEER_NOT_FOUND', async (t) => {
    await t.rejects(m.addMember(owner.principal, 'g-one', { login: 'nobody' }), { code: 'PEER_NOT_FOUND' });
    await t.rejects(m.direct(owner.principal, 'nobody'), { code: 'PEER_NOT_FOUND' });
  });

  await t.test('when a disabled account is added then PEER_NOT_FOUND', async (t) => {
    const d = await h.user('g-disabled', 'secret');
    h.people.set(d.login, { ...h.people.get(d.login)!, active: false });
    await t.rejects(m.addMember(owner.principal, 'g-one', { login: d.login }), { code: 'PEER_NOT_FOUND' });
  });

  await t.test('when an auditor would join a conversation then FORBIDDEN', async (t) => {
    await t.rejects(m.addMember(owner.principal, 'g-one', { login: auditor.login }), { code: 'FORBIDDEN' });
    await t.rejects(m.direct(auditor.principal, owner.login), { code: 'FORBIDDEN' });
  });

  await t.test('when a plain member manages the group then FORBIDDEN', async (t) => {
    await m.addMember(owner.principal, 'g-one', { login: mem.login });
    await t.rejects(m.addMember(mem.principal, 'g-one', { login: officer.login }), { code: 'FORBIDDEN' });
    await t.rejects(m.removeMember(mem.principal, 'g-one', owner.login), { code: 'FORBIDDEN' });
  });

  await t.test('when an officer manages a group they are not in then it works, for others', async (t) => {
    const other = await h.user('g-other', 'secret');
    const g = await m.addMember(officer.principal, 'g-one', { login: other.login });
    t.ok(g.members.some((x) => x.login === other.login));
    await m.removeMember(officer.principal, 'g-one', other.login);
  });

  await t.test('when an officer adds themselves to a group they are not in then FORBIDDEN: an owner adds them', async (t) => {
    // Else an officer could join any group, read its whole history with bodies, and leave again.
    await t.rejects(m.addMember(officer.principal, 'g-one', { login: officer.login }), { code: 'FORBIDDEN', message: /one of its owners adds you/ });
    await t.rejects(m.history(officer.principal, (await m.group(officer.principal, 'g-one')).id, {}), { code: /NOT_A_MEMBER|CONVERSATION_NOT_FOUND/ }, 'no history for them');
    const g = await m.addMember(owner.principal, 'g-one', { login: officer.login });
    t.ok(g.members.some((x) => x.login === officer.login), 'an owner adds them');
    await m.removeMember(officer.principal, 'g-one', officer.login);
  });

  await t.test('when a group is created and its members change then each change is an audit entry, with who did it', async (t) => {
    const g = await m.createGroup(owner.principal, { name: 'g-audited', label: 'restricted' });
    await m.addMember(owner.principal, 'g-audited', { login: mem.login });
    await m.addMember(officer.principal, 'g-audited', { login: mem.login, role: 'owner' });
    await m.removeMember(officer.principal, 'g-audited', mem.login);
    const entries = (await h.audit.query({ type: 'group' })).filter((e) => e.data?.group === g.id);
    t.same(
      entries.map((e) => [e.type, e.actor, e.subject, e.data?.role ?? null]),
      [
        ['group.created', owner.login, owner.login, null],
        ['group.member.added', owner.login, mem.login, 'member'],
        ['group.member.added', officer.login, mem.login, 'owner'],
        ['group.member.removed', officer.login, mem.login, null],
      ],
    );
    t.match(entries[0]!.data, { name: 'g-audited', label: 'restricted' });
    t.match(await h.audit.verify(), { ok: true }, 'the trail verifies with them');
  });

  await t.test('when the last owner is removed then MEMBERSHIP_CONFLICT', async (t) => {
    await t.rejects(m.removeMember(owner.principal, 'g-one', owner.login), { code: 'MEMBERSHIP_CONFLICT' });
    await t.rejects(m.removeMember(owner.principal, 'g-one', low.login), { code: 'MEMBERSHIP_CONFLICT' });
  });

  await t.test('when an outsider asks for a group then GROUP_NOT_FOUND', async (t) => {
    await t.rejects(m.group(low.principal, 'g-one'), { code: 'GROUP_NOT_FOUND' });
    await t.rejects(m.group(owner.principal, 'g-none'), { code: 'GROUP_NOT_FOUND' });
  });

  await t.test('when a member leaves then they are out', async (t) => {
    const g = await m.removeMember(mem.principal, 'g-one', mem.login);
    t.notOk(g.members.some((x) => x.login === mem.login));
  });
});

t.test('deletion rules', async (t) => {
  const h = await harness(t);
  const m = h.messaging;
  const a = await h.user('d-alice');
  const b = await h.user('d-bob');
  const c = await h.user('d-carol');
  const officer = await h.user('d-officer', 'secret', 'officer');
  const ab = await m.direct(a.principal, b.login);

  const send = async (u = a, conv = ab.id, text = 'x') => {
    const msg = await h.compose(u, conv, text);
    await m.send(u.principal, msg);
    return msg.id;
  };

  await t.test('when someone other than the sender deletes a message then FORBIDDEN', async (t) => {
    const id = await send();
    await t.rejects(m.deleteMessage(b.principal, id, await h.deleteRequest(b, `message:${id}`)), { code: 'FORBIDDEN' });
  });

  await t.test('when the statement names another target then DELETE_STATEMENT_INVALID', async (t) => {
    const id = await send();
    await t.rejects(m.deleteMessage(a.principal, id, await h.deleteRequest(a, 'message:AAAAAAAAAAAAAAAAAAAAAA')), {
      code: 'DELETE_STATEMENT_INVALID',
    });
  });

  await t.test('when the statement is signed by someone else then DELETE_STATEMENT_INVALID', async (t) => {
    const id = await send();
    const req = await h.deleteRequest(b, `message:${id}`);
    await t.rejects(m.deleteMessage(a.principal, id, req), { code: 'DELETE_STATEMENT_INVALID' });
  });

  await t.test('when the request reason differs from the signed one then DELETE_STATEMENT_INVALID', async (t) => {
    const id = await send();
    const req = await h.deleteRequest(a, `message:${id}`, 'signed reason');
    await t.rejects(m.deleteMessage(a.principal, id, { ...req, reason: 'other reason' }), { code: 'DELETE_STATEMENT_INVALID' });
  });

  await t.test('when the statement is old then MESSAGE_CLOCK_SKEW', async (t) => {
    const id = await send();
    const req = await h.deleteRequest(a, `message:${id}`);
    h.clock.now = new Date(h.clock.now.getTime() + 60 * 60_000);
    await t.rejects(m.deleteMessage(a.principal, id, req), { code: 'MESSAGE_CLOCK_SKEW' });
    h.clock.now = new Date(h.clock.now.getTime() - 60 * 60_000);
  });

  await t.test('when a deleted message is resubmitted then MESSAGE_REPLAY', async (t) => {
    const msg = await h.compose(a, ab.id, 'resurrect me');
    await m.send(a.principal, msg);
    await m.deleteMessage(a.principal, msg.id, await h.deleteRequest(a, `message:${msg.id}`));
    await t.rejects(m.send(a.principal, msg), { code: 'MESSAGE_REPLAY' });
  });

  await t.test('when an outsider deletes a direct conversation then CONVERSATION_NOT_FOUND', async (t) => {
    await t.rejects(m.deleteConversation(c.principal, ab.id, await h.deleteRequest(c, `conversation:${ab.id}`)), {
      code: 'CONVERSATION_NOT_FOUND',
    });
  });

  await t.test('when an officer deletes a message or a direct conversation they are not in then it is destroyed', async (t) => {
    const bc = await m.direct(b.principal, c.login);
    const id = await send(b, bc.id, 'officer removes this');
    const ts = await m.deleteMessage(officer.principal, id, await h.deleteRequest(officer, `message:${id}`));
    t.equal(ts.deletedBy, officer.login);
    await t.rejects(m.message(c.principal, id), { code: 'MESSAGE_NOT_FOUND' });
    await send(b, bc.id, 'and the rest');
    const all = await m.deleteConversation(officer.principal, bc.id, await h.deleteRequest(officer, `conversation:${bc.id}`));
    t.equal(all.count, 1);
    await t.rejects(m.history(b.principal, bc.id, {}), { code: 'CONVERSATION_NOT_FOUND' });
  });

  await t.test('when a staff member deletes a user correspondence then FORBIDDEN', async (t) => {
    await t.rejects(m.deleteUserCorrespondence(b.principal, a.login, await h.deleteRequest(b, `user:${a.login}`)), {
      code: 'FORBIDDEN',
    });
  });

  await t.test('when an officer destroys a user correspondence then their messages and direct conversations go', async (t) => {
    const g = await m.createGroup(b.principal, { name: 'd-group', label: 'restricted' });
    await m.addMember(b.principal, g.name, { login: a.login });
    await m.addMember(b.principal, g.name, { login: c.login });
    const inGroup = await send(a, g.id, 'from alice');
    const fromBob = await send(b, g.id, 'from bob');
    const bc = await m.direct(b.principal, c.login);
    const other = await send(b, bc.id, 'unrelated');
    const ts = await m.deleteUserCorrespondence(officer.principal, a.login, await h.deleteRequest(officer, `user:${a.login}`));
    t.ok(ts.count >= 2);
    await t.rejects(m.message(b.principal, inGroup), { code: 'MESSAGE_NOT_FOUND' });
    await t.rejects(m.history(b.principal, ab.id, {}), { code: 'CONVERSATION_NOT_FOUND' });
    t.ok(await m.message(c.principal, fromBob), 'others’ group messages stay');
    t.ok(await m.message(c.principal, other), 'unrelated conversations stay');
  });

  await t.test('when an unknown user correspondence is destroyed then PEER_NOT_FOUND', async (t) => {
    await t.rejects(m.deleteUserCorrespondence(officer.principal, 'ghost', await h.deleteRequest(officer, 'user:ghost')), {
      code: 'PEER_NOT_FOUND',
    });
  });

  await t.test('when a group has retention then older messages are destroyed by the sweep', async (t) => {
    const g = await m.createGroup(b.principal, { name: 'd-retained', label: 'restricted', retentionDays: 1 });
    const old = await send(b, g.id, 'old');
    h.clock.now = new Date(h.clock.now.getTime() + 2 * 86_400_000);
    const fresh = await send(b, g.id, 'fresh');
    const r = await m.sweep();
    t.equal(r.retention, 1);
    await t.rejects(m.message(b.principal, old), { code: 'MESSAGE_NOT_FOUND' });
    await t.rejects(h.vault.keys.messageKey(old), { code: 'VAULT_KEY_NOT_FOUND' });
    t.ok(await m.message(b.principal, fresh));
    const tomb = (await h.audit.entries(0, 10_000)).filter((e) => e.type === 'deletion' && e.actor === 'system:retention');
    t.equal(tomb.length, 1);
  });

  await t.test('when a statement is not canonical then DELETE_STATEMENT_INVALID', async (t) => {
    const ac = await m.direct(a.principal, c.login);
    const id = await send(a, ac.id);
    const req = await h.deleteRequest(a, `message:${id}`);
    const loose = JSON.stringify(JSON.parse(req.statement), null, 2);
    await t.rejects(m.deleteMessage(a.principal, id, { ...req, statement: loose }), { code: 'DELETE_STATEMENT_INVALID' });
    t.equal(canonicalDeleteStatement(JSON.parse(req.statement)), req.statement);
  });
});

t.test('when a direct conversation is opened while a user’s correspondence is being destroyed then it is destroyed too', async (t) => {
  // The deletion used to list the user's direct conversations before its transaction, then wait
  // (keyed hash, the vault's write lock): one opened in that gap, and what was said in it, stayed.
  let between: (() => Promise<void>) | undefined;
  const h = await harness(t, {
    keyedHash: (base) => async (data) => {
      if (data === 'user:r-alice' && between) {
        const run = between;
        between = undefined;
        await run();
      }
      return base(data);
    },
  });
  const m = h.messaging;
  const a = await h.user('r-alice');
  const b = await h.user('r-bob');
  const c = await h.user('r-carol');
  const officer = await h.user('r-officer', 'secret', 'officer');
  const ab = await m.direct(a.principal, b.login);
  await m.send(a.principal, await h.compose(a, ab.id, 'before'));
  let late: { conv: string; id: string } | undefined;
  between = async () => {
    const ca = await m.direct(c.principal, a.login);
    const msg = await h.compose(c, ca.id, 'said while the deletion waited');
    await m.send(c.principal, msg);
    late = { conv: ca.id, id: msg.id };
  };
  const ts = await m.deleteUserCorrespondence(officer.principal, a.login, await h.deleteRequest(officer, `user:${a.login}`));
  t.ok(late, 'control: the conversation was opened in the gap');
  t.equal(ts.count, 2, 'both direct conversations’ messages counted');
  await t.rejects(m.history(c.principal, late!.conv, {}), { code: 'CONVERSATION_NOT_FOUND' }, 'the late conversation is gone');
  await t.rejects(m.message(c.principal, late!.id), { code: 'MESSAGE_NOT_FOUND' });
  await t.rejects(m.history(b.principal, ab.id, {}), { code: 'CONVERSATION_NOT_FOUND' });
  t.same((await m.conversations(c.principal)).map((x) => x.id), [], 'carol has no conversation with alice left');
});

t.test('when a member is added to a group that is destroyed meanwhile then GROUP_NOT_FOUND, not an internal error', async (t) => {
  // addMember looks the group up, then the person: a destroy committed in between made the
  // membership row fail its foreign key, which the routes answered as a 500.
  const h = await harness(t);
  const m = h.messaging;
  const owner = await h.user('x-owner');
  const joiner = await h.user('x-joiner');
  const g = await m.createGroup(owner.principal, { name: 'x-doomed', label: 'restricted' });
  const request = await h.deleteRequest(owner, `conversation:${g.id}`);
  const get = h.people.get.bind(h.people);
  let destroyed = false;
  // The directory answers `async (login) => people.get(login)`: a promise here is awaited first.
  h.people.get = ((login: string) => {
    if (login !== joiner.login || destroyed) return get(login);
    destroyed = true;
    return m.deleteGroup(owner.principal, 'x-doomed', request).then(() => get(login));
  }) as typeof h.people.get;
  await t.rejects(m.addMember(owner.principal, 'x-doomed', { login: joiner.login }), { code: 'GROUP_NOT_FOUND' });
  t.ok(destroyed, 'control: the group was destroyed between the lookup and the insert');
  const left = await h.vault.db.get<{ n: number }>('SELECT count(*) AS n FROM msg_members WHERE conversation = ?', [g.id]);
  t.equal(left?.n, 0, 'no membership row of the destroyed group');
});
