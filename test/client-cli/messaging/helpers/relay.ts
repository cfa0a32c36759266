/**
 * A TCP relay between a CLI profile and the appliance that stops passing one direction's bytes
 * once a connection has carried `limit` of them: a transfer that stalls half-way, for the tests
 * that interrupt one. Past the limit the bytes are read and dropped, not paused: a paused socket
 * would not see its peer's end, and each side must see the other go as over a real connection.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';

export interface StallingRelay {
  port: number;
  /** How many connections have reached the limit so far. */
  stalled(): number;
}

export async function stallingRelay(
  t: { teardown(fn: () => void): void },
  appliancePort: number,
  o: { limit: number; stall: 'upload' | 'download' },
): Promise<StallingRelay> {
  const sockets = new Set<Socket>();
  let stalled = 0;
  const relay = createServer((client) => {
    const upstream = connect(appliancePort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    const [from, to] = o.stall === 'upload' ? [client, upstream] : [upstream, client];
    to.pipe(from); // the other direction passes whole
    let passed = 0;
    from.on('data', (d: Buffer) => {
      const room = o.limit - passed;
      if (room > 0) to.write(d.subarray(0, room));
      if (passed < o.limit && passed + d.length >= o.limit) stalled++;
      passed += d.length;
    });
    from.on('end', () => to.end());
    client.on('close', () => upstream.destroy()); // the CLI gone: the appliance sees it at once
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    relay.close();
  });
  return { port: (relay.address() as { port: number }).port, stalled: () => stalled };
}

/** Points the profile's server at `port` on 127.0.0.1 (same pinned CA, same session). */
export function pointProfileAt(profile: string, port: number): void {
  const configFile = join(profile, 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { server: string };
  writeFileSync(configFile, JSON.stringify({ ...config, server: `https://127.0.0.1:${port}` }, null, 2) + '\n');
}
