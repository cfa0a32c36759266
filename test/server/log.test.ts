import t from 'tap';
import { createLogger, errorFields } from '../../server/index.js';

t.test('when fields outside the allowlist are logged then they are dropped', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => void lines.push(l), now: () => new Date('2026-01-02T03:04:05Z') });
  log.info('login', { login: 'alice', password: 'hunter2', token: 'abc', body: 'secret text', status: 200 } as never);
  const o = JSON.parse(lines[0]);
  t.same(o, { time: '2026-01-02T03:04:05.000Z', level: 'info', msg: 'login', login: 'alice', status: 200 });
});

t.test('when an object is passed as a field value then it is dropped', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => void lines.push(l) });
  log.info('x', { path: { nested: 'content' } } as never);
  t.notOk('path' in JSON.parse(lines[0]));
});

t.test('when the level is below the threshold then nothing is written', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', write: (l) => void lines.push(l) });
  log.info('quiet');
  log.debug('quieter');
  log.error('loud');
  t.equal(lines.length, 1);
  t.equal(JSON.parse(lines[0]).level, 'error');
});

t.test('when a child logger is made then its pinned fields appear on every line', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => void lines.push(l) }).child({ requestId: 'r1' });
  log.warn('a');
  log.warn('b', { requestId: 'r2' });
  t.equal(JSON.parse(lines[0]).requestId, 'r1');
  t.equal(JSON.parse(lines[1]).requestId, 'r2');
  t.ok(lines.every((l) => l.endsWith('\n')));
});

t.test('errorFields', async (t) => {
  const e = Object.assign(new Error('boom'), { code: 'X_Y' });
  t.match(errorFields(e), { errorName: 'Error', errorCode: 'X_Y', errorMessage: 'boom' });
  t.same(errorFields('str'), { errorName: 'string' });
});
