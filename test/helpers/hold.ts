/**
 * Holding one step of a request open, so that two overlapping requests interleave the same way on
 * every run (the race tests of test/server/auth).
 */
import type { Test } from 'tap';

/**
 * Makes the next call of `obj[method]` wait until `release()` is called; `reached` resolves when
 * that call has started. Later calls run unhindered. Restored when the test ends.
 */
export function holdNext<O extends object, K extends keyof O>(t: Test, obj: O, method: K): { reached: Promise<void>; release(): void } {
  const original = obj[method] as unknown as (...args: unknown[]) => Promise<unknown>;
  let onReached!: () => void;
  const reached = new Promise<void>((r) => (onReached = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let held = false;
  (obj as Record<K, unknown>)[method] = async function (this: unknown, ...args: unknown[]) {
    if (!held) {
      held = true;
      onReached();
      await released;
    }
    return original.apply(this, args);
  };
  t.teardown(() => void ((obj as Record<K, unknown>)[method] = original));
  return { reached, release };
}

/** Waits until `request` reaches the held step; fails (and answers false) if it ended before that. */
export async function reachesHold(t: Test, hold: { reached: Promise<void> }, request: Promise<{ body: unknown }>, what: string): Promise<boolean> {
  const first = await Promise.race([hold.reached.then(() => 'held' as const), request.then(() => 'ended' as const)]);
  if (first === 'ended') t.fail(`${what} ended before its held step: ${JSON.stringify((await request).body)}`);
  return first === 'held';
}
