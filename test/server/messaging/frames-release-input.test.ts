/**
 * While a message's signature check waits (under load ~0.3 s in the check workers' queue), nothing
 * of the request's text may stay reachable: an async function keeps its arguments and locals until
 * it returns, and the service's old `acceptMessages`/`checkMessage` held each item's base64 text
 * (~2.3 kB a message) through the wait, so every scavenge copied it and then promoted it
 * (bench/README.md, "Nineteenth session"). Held to that with WeakRefs and a forced GC, while the
 * checks are parked on a gate.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import t from 'tap';
import { pkiVerifier } from '../../../server/messaging/index.js';
import type { MessageInput } from '../../../server/messaging/messages.js';
import { harness } from './harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('when a batch waits for its signature checks then its items are no longer reachable, and it is still accepted', async (t) => {
  const h = await harness(t);
  const { a, conv } = await h.direct('frame-a', 'frame-b');
  await h.messaging.close();
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let waiting = 0;
  const m = await h.restart({
    verify: async (signature, content, signer) => {
      waiting++;
      await gate;
      return pkiVerifier(signature, content, signer);
    },
  });
  t.teardown(() => m.close());

  const composed = [await h.compose(a, conv.id, 'first'), await h.compose(a, conv.id, 'second')];
  // Fresh objects and strings, as the route's parse makes them: only the service can hold them.
  let items: MessageInput[] | undefined = composed.map((c) => ({ header: `${c.header}`, signature: c.signature.slice(0), body: c.body.slice(0) }));
  const refs = items.map((i) => new WeakRef(i));
  const pending = m.sendMany(a.principal, items);
  items = undefined;
  while (waiting < composed.length) await turn();
  // WeakRef targets live to the end of the job that made them: collect on a later turn.
  await turn();
  gc();
  gc();
  t.equal(refs.filter((r) => r.deref() !== undefined).length, 0, 'no item is reachable while its check waits');

  open();
  const outcomes = await pending;
  t.same(outcomes.map((o) => o.ok), [true, true], 'both messages are accepted once their checks go on');
});

t.test('when one message waits for its signature check then its input is no longer reachable, and it is still accepted', async (t) => {
  const h = await harness(t);
  const { a, conv } = await h.direct('frame-c', 'frame-d');
  await h.messaging.close();
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let waiting = 0;
  const m = await h.restart({
    verify: async (signature, content, signer) => {
      waiting++;
      await gate;
      return pkiVerifier(signature, content, signer);
    },
  });
  t.teardown(() => m.close());

  const c = await h.compose(a, conv.id, 'alone');
  let input: MessageInput | undefined = { header: `${c.header}`, signature: c.signature.slice(0), body: c.body.slice(0) };
  const ref = new WeakRef(input);
  const pending = m.send(a.principal, input);
  input = undefined;
  while (waiting < 1) await turn();
  await turn();
  gc();
  gc();
  t.equal(ref.deref(), undefined, 'the input is not reachable while its check waits');

  open();
  t.equal((await pending).id, c.id, 'the message is accepted once its check goes on');
});
