import t from 'tap';
import { Lru } from '../../../server/vault/lru.js';

t.test('when the cache is over capacity then the least recently used entry is evicted', async (t) => {
  const c = new Lru<string, number>(2);
  c.set('a', 1);
  c.set('b', 2);
  t.equal(c.get('a'), 1); // a is now the most recent
  c.set('c', 3);
  t.equal(c.has('b'), false, 'b was least recently used');
  t.equal(c.get('a'), 1);
  t.equal(c.get('c'), 3);
  c.deleteWhere((v) => v === 3);
  t.equal(c.size, 1);
  t.throws(() => new Lru(0), RangeError);
});
