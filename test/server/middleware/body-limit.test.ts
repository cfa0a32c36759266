/**
 * The body limit (server/middleware/body-limit.ts) over a real Node HTTP server and in-process: a
 * declared Content-Length over the limit is refused from the header, a chunked body is counted
 * while it streams, a body under the limit reaches the handler whole, and a Request made
 * in-process with neither header is still counted.
 */
import t from 'tap';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { bodyLimit } from '../../../server/middleware/body-limit.js';

function app(): Hono {
  const a = new Hono();
  a.onError((err, c) => c.json({ code: (err as { code?: string }).code ?? 'OTHER' }, 413));
  a.post('/', bodyLimit(1000), async (c) => c.json({ got: (await c.req.text()).length }));
  return a;
}

function post(port: number, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

t.test('over a real Node HTTP server', async (t) => {
  const server = serve({ fetch: app().fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => server.once('listening', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;

  const small = await post(port, 'x'.repeat(999), { 'content-length': '999' });
  t.same([small.status, JSON.parse(small.text)], [200, { got: 999 }], 'under the limit: the whole body reaches the handler');
  const big = await post(port, 'x'.repeat(1001), { 'content-length': '1001' });
  t.same([big.status, JSON.parse(big.text)], [413, { code: 'BODY_TOO_LARGE' }], 'declared over the limit');
  const chunked = await post(port, 'x'.repeat(5000), { 'transfer-encoding': 'chunked' });
  t.same([chunked.status, JSON.parse(chunked.text)], [413, { code: 'BODY_TOO_LARGE' }], 'chunked over the limit, counted');
  const chunkedSmall = await post(port, 'x'.repeat(10), { 'transfer-encoding': 'chunked' });
  t.same([chunkedSmall.status, JSON.parse(chunkedSmall.text)], [200, { got: 10 }], 'chunked under the limit');
});

t.test('when a Request made in-process has a body but neither header then it is counted', async (t) => {
  const r = await app().request('/', { method: 'POST', body: 'x'.repeat(5000) });
  t.equal(r.status, 413);
  t.same(await r.json(), { code: 'BODY_TOO_LARGE' });
});
