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
import t, { type Test } from 'tap';
import { pkiVerifier, type Messaging } from '../../../server/messaging/index.js';
import type { MessageInput } from '../../../server/messaging/messages.js';
import { harness, type Harness, type User } from './harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A messaging service over a fresh vault whose signature checks wait on a gate: `checking()` says
 * how many reached it, `open()` lets them all go on.
 */
async function gatedService(t: Test, a: string, b: string): Promise<{ h: Harness; m: Messaging; sender: User; conv: string; checking(): number; open(): void }> {
  const h = await harness(t);
  const { a: sender, conv } = await h.direct(a, b);
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
  return { h, m, sender, conv: conv.id, checking: () => waiting, open };
}

/** Once `n` checks wait, collects garbage on a later turn (a WeakRef target lives to the end of the job that made it). */
async function collectWhileWaiting(checking: () => number, n: number): Promise<void> {
  while (checking() < n) await turn();
  await turn();
  gc();
  gc();
}

t.test('when a batch waits for its signature checks then its items are no longer reachable, and it is still accepted', async (t) => {
  const { h, m, sender, conv, checking, open } = await gatedService(t, 'frame-a', 'frame-b');
  const composed = [await h.compose(sender, conv, 'first'), await h.compose(sender, conv, 'second')];
  // Fresh objects and strings, as the route's parse makes them: only the service can hold them.
  let items: MessageInput[] | undefined = composed.map((c) => ({ header: `${c.header}`, signature: c.signature.slice(0), body: c.body.slice(0) }));
  const refs = items.map((i) => new WeakRef(i));
  const pending = m.sendMany(sender.principal, items);
  items = undefined;
  await collectWhileWaiting(checking, composed.length);
  t.equal(refs.filter((r) => r.deref() !== undefined).length, 0, 'no item is reachable while its check waits');

  open();
  const outcomes = await pending;
  t.same(outcomes.map((o) => o.ok), [true, true], 'both messages are accepted once their checks go on');
});

t.test('when one message waits for its signature check then its input is no longer reachable, and it is still accepted', async (t) => {
  const { h, m, sender, conv, checking, open } = await gatedService(t, 'frame-c', 'frame-d');
  const c = await h.compose(sender, conv, 'alone');
  let input: MessageInput | undefined = { header: `${c.header}`, signature: c.signature.slice(0), body: c.body.slice(0) };
  const ref = new WeakRef(input);
  const pending = m.send(sender.principal, input);
  input = undefined;
  await collectWhileWaiting(checking, 1);
  t.equal(ref.deref(), undefined, 'the input is not reachable while its check waits');

  open();
  t.equal((await pending).id, c.id, 'the message is accepted once its check goes on');
});
