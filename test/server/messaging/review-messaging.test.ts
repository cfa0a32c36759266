/**
 * Findings of a review of messaging on the server (signed messages, groups, files, deletion),
 * each a race between two requests held apart with a gate on the signature check, as
 * frames-release-input.test.ts does: everything else is the real vault, keys and signatures.
 */
import t, { type Test } from 'tap';
import { pkiVerifier, type Messaging } from '../../../server/messaging/index.js';
import { harness, type Harness } from './harness.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A messaging service over `h`'s vault whose message signature checks wait on a gate: `checking()`
 * says how many reached it, `open()` lets them go on. Deletion statements pass straight through.
 */
async function gated(t: Test, h: Harness): Promise<{ m: Messaging; checking(): number; open(): void }> {
  await h.messaging.close();
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let waiting = 0;
  const m = await h.restart({
    verify: async (signature, content, signer) => {
      if (new TextDecoder().decode(content).includes('"purpose":"sigil-message"')) {
        waiting++;
        await gate;
      }
      return pkiVerifier(signature, content, signer);
    },
  });
  t.teardown(() => m.close());
  return { m, checking: () => waiting, open };
}

t.test('when a member is removed from a group while their message is checked then it is refused, not stored', async (t) => {
  const h = await harness(t);
  const owner = await h.user('rv-owner');
  const gone = await h.user('rv-gone');
  await h.messaging.createGroup(owner.principal, { name: 'rv-one', label: 'secret' });
  const g = await h.messaging.addMember(owner.principal, 'rv-one', { login: gone.login });
  const { m, checking, open } = await gated(t, h);
  const msg = await h.compose(gone, g.id, 'sent before the removal answered');
  const sent = m.send(gone.principal, msg);
  sent.catch(() => undefined);
  while (checking() < 1) await turn();
  // The owner removes them while the signature is checked; the removal answers first.
  const after = await m.removeMember(owner.principal, 'rv-one', gone.login);
  t.notOk(after.members.some((x) => x.login === gone.login), 'removed');
  open();
  await t.rejects(sent, { code: 'CONVERSATION_NOT_FOUND' }, 'a non-member\'s message is refused as any send of theirs now is');
  const seen = await m.history(owner.principal, g.id, {});
  t.same(seen.messages.map((x) => x.id), [], 'nothing of theirs entered the group after the removal');
});

t.test('when a member is removed while their message with an attachment is checked then it is refused and the upload stays pending', async (t) => {
  const h = await harness(t);
  const owner = await h.user('rv-owner2');
  const gone = await h.user('rv-gone2');
  await h.messaging.createGroup(owner.principal, { name: 'rv-two', label: 'secret' });
  const g = await h.messaging.addMember(owner.principal, 'rv-two', { login: gone.login });
  const { m, checking, open } = await gated(t, h);
  const bytes = new TextEncoder().encode('a report');
  const up = await m.upload(gone.principal, g.id, new Blob([bytes]).stream(), bytes.length);
  const msg = await h.compose(gone, g.id, 'see attached', {
    attachments: [{ id: up.fileId, name: 'report.txt', sha384: up.sha384, size: up.size }],
  });
  const sent = m.send(gone.principal, msg);
  sent.catch(() => undefined);
  while (checking() < 1) await turn();
  await m.removeMember(owner.principal, 'rv-two', gone.login);
  open();
  await t.rejects(sent, { code: 'CONVERSATION_NOT_FOUND' });
  t.same((await m.history(owner.principal, g.id, {})).messages, []);
  await t.rejects(m.download(owner.principal, up.fileId), { code: 'FILE_NOT_FOUND' }, 'the file reached nobody');
  const row = await h.vault.db.get<{ state: string }>('SELECT state FROM msg_files WHERE id = ?', [up.fileId]);
  t.equal(row?.state, 'pending', 'still the uploader\'s pending upload, destroyed by the sweep');
});
