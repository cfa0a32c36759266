/**
 * LateDestruction (server/messaging/late-destruction.ts) alone: what a deletion could not finish
 * after its commit is retried with a doubling wait until it succeeds, keys before the checkpoint,
 * and nothing runs after close.
 */
import t from 'tap';
import { LateDestruction } from '../../../server/messaging/late-destruction.js';
import type { KeysToDestroy } from '../../../server/messaging/ports.js';
import type { LogFields } from '../../../server/log.js';

const diskFull = (): Error => Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'VAULT_FULL' });

/** Deps whose key store fails its first `keyFailures` calls and whose checkpoint fails its first `cpFailures`. */
function deps(keyFailures: number, cpFailures: number) {
  const calls: string[] = [];
  const logs: (LogFields & { event: string })[] = [];
  let k = keyFailures;
  let c = cpFailures;
  return {
    calls,
    logs,
    d: {
      keys: {
        async destroyKeysAfter(what: KeysToDestroy) {
          calls.push(`keys ${[...(what.messageIds ?? []), ...(what.conversationIds ?? [])].join(',')}`);
          if (k-- > 0) throw diskFull();
          return {};
        },
      },
      async checkpoint() {
        calls.push('checkpoint');
        if (c-- > 0) throw diskFull();
      },
      log: (event: string, fields: LogFields) => void logs.push({ event, ...fields }),
      firstDelayMs: 10,
      maxDelayMs: 40,
    },
  };
}

const until = async (cond: () => boolean, ms = 3000): Promise<boolean> => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 5))) if (cond()) return true;
  return cond();
};

t.test('when keys and the checkpoint fail then they are retried, doubling up to the longest wait, keys first', async (t) => {
  const { d, calls, logs } = deps(3, 1);
  const late = new LateDestruction(d);
  t.teardown(() => late.close());
  late.keys({ messageIds: ['m1'] });
  late.keys({ conversationIds: ['c1'], messageIds: ['m2'] });
  late.checkpoint();
  t.ok(late.pending);
  t.ok(await until(() => !late.pending), 'finished');
  t.same(calls, ['keys m1,m2,c1', 'keys m1,m2,c1', 'keys m1,m2,c1', 'keys m1,m2,c1', 'checkpoint', 'checkpoint'], 'the checkpoint waits for the keys');
  t.same(
    logs.filter((l) => l.event === 'messaging.late-destruction-failed').map((l) => l.ms),
    [20, 40, 40, 40],
    'each failure doubles the wait, up to the longest',
  );
  t.equal(logs.at(-1)?.event, 'messaging.late-destruction-done');
});

t.test('when nothing waits then an attempt does nothing', async (t) => {
  const { d, calls } = deps(0, 0);
  const late = new LateDestruction(d);
  t.equal(await late.attempt(), true);
  t.same(calls, []);
  await late.close();
});

t.test('when it is closed then no timer runs again', async (t) => {
  const { d, calls } = deps(Infinity, 0);
  const late = new LateDestruction({ ...d, firstDelayMs: 5 });
  late.keys({ messageIds: ['m1'] });
  await late.close();
  await new Promise((r) => setTimeout(r, 50));
  t.same(calls, [], 'the scheduled attempt never ran');
  t.ok(late.pending, 'what is left is for the next start');
});
