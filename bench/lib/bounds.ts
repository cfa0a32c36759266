/**
 * The machine's bounds for the benches that have no single crypto operation to compare with:
 * what the same engine does on this machine, in the same run, with none of Sigil's work around it.
 *
 * - {@link sqliteBounds}: a plain table of the vault's row shape in a scratch database opened with
 *   the vault's own pragmas (`Db.open`: WAL, secure_delete, synchronous=FULL) and page size: the
 *   newest page of one conversation, and DELETE of a whole conversation followed by the TRUNCATE
 *   checkpoint a destroy ends with. It is the floor under history and deletion: no keys, no audit, no
 *   tombstone, no decryption.
 * - {@link tlsFanOutBound}: a bare `node:tls` server in a worker thread writing one pre-encoded
 *   event of the real size to W TLS connections held by this thread. It is the floor under live
 *   delivery: no HTTP, no SSE encoding, no sessions, no clearance check.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Worker } from 'node:worker_threads';
import { Db } from '../../server/vault/db.js';
import { VAULT_PAGE_SIZE } from '../../server/vault/vault.js';

export interface SqliteBounds {
  /** Rows in the scratch conversation. */
  rows: number;
  /** Median of 20 reads of the newest 50 rows, blobs included, ms. */
  newestPageMs: number;
  /** DELETE of every row of the conversation and `wal_checkpoint(TRUNCATE)`, ms. */
  deleteAllMs: number;
  /** Rows the newest-page query returned (50 unless the conversation is smaller). */
  pageRows: number;
  /** Rows the DELETE removed: `rows`, or the figure above is not the bound it claims to be. */
  deleted: number;
}

/**
 * Fills a scratch database with `rows` rows of `rowBytes` random bytes in one conversation (and as
 * many in another, so the delete has neighbours), then times the newest page and the delete.
 */
export async function sqliteBounds(rows: number, rowBytes: number): Promise<SqliteBounds> {
  const dir = mkdtempSync(join(tmpdir(), 'sigil-bound-'));
  const db = await Db.open(join(dir, 'bound.db'), { pageSize: VAULT_PAGE_SIZE });
  try {
    await db.exec(`CREATE TABLE m (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
      conversation TEXT NOT NULL, sealed BLOB NOT NULL) STRICT;
      CREATE INDEX m_conv ON m(conversation, seq);`);
    const PER = 200;
    for (const conv of ['other', 'target']) {
      for (let done = 0; done < rows; ) {
        await db.transaction(async (tx) => {
          for (let k = 0; k < 50 && done < rows; k++) {
            const n = Math.min(PER, rows - done);
            const params: unknown[] = [];
            for (let i = 0; i < n; i++) params.push(`${conv}-${done + i}`, conv, crypto.getRandomValues(new Uint8Array(rowBytes)));
            await tx.run(`INSERT INTO m (id, conversation, sealed) VALUES ${Array(n).fill('(?, ?, ?)').join(',')}`, params);
            done += n;
          }
        });
      }
    }
    await db.checkpointTruncate();
    const page = 'SELECT seq, id, sealed FROM m WHERE conversation = ? ORDER BY seq DESC LIMIT 50';
    const pageRows = (await db.all(page, ['target'])).length;
    const runs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await db.all(page, ['target']);
      runs.push(performance.now() - t0);
    }
    runs.sort((a, b) => a - b);
    const t0 = performance.now();
    const { changes: deleted } = await db.transaction((tx) => tx.run('DELETE FROM m WHERE conversation = ?', ['target']));
    await db.checkpointTruncate();
    return { rows, newestPageMs: runs[10]!, deleteAllMs: performance.now() - t0, pageRows, deleted };
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A throwaway self-signed P-256 certificate for the bare TLS server (openssl CLI). */
function throwawayCert(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sigil-bound-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=bound',
      '-days', '1', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'k.pem'), 'utf8'), cert: readFileSync(join(dir, 'c.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bare TLS server: accepts `watchers` connections, then writes `event` `events` times to each. */
const SERVER = `
const tls = require('node:tls');
const { parentPort, workerData: w } = require('node:worker_threads');
const sockets = [];
const server = tls.createServer({ key: w.key, cert: w.cert, minVersion: 'TLSv1.3' }, (s) => {
  s.on('error', () => {});
  sockets.push(s);
  if (sockets.length === w.watchers) parentPort.postMessage('ready');
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
parentPort.on('message', (m) => {
  if (m === 'go') {
    const event = Buffer.from(w.event);
    let i = 0;
    const round = () => {
      for (const s of sockets) s.write(event);
      if (++i < w.events) setImmediate(round);
    };
    round();
  } else if (m === 'stop') {
    for (const s of sockets) s.destroy();
    server.close();
  }
});
`;

/**
 * Deliveries/s of an `eventBytes` event to `watchers` TLS connections on 127.0.0.1, `events`
 * events each, with the clients in this thread counting bytes (as the live bench's watchers do).
 */
export async function tlsFanOutBound(watchers: number, events: number, eventBytes: number): Promise<{ deliveriesPerSecond: number; seconds: number }> {
  const { key, cert } = throwawayCert();
  const event = new Uint8Array(eventBytes).fill(0x61);
  const worker = new Worker(SERVER, { eval: true, workerData: { key, cert, watchers, events, event } });
  try {
    const port = await new Promise<number>((res, rej) => {
      worker.once('message', res);
      worker.once('error', rej);
    });
    const ready = new Promise<void>((res) => worker.once('message', () => res()));
    const want = events * eventBytes;
    let complete = 0;
    let allDone!: () => void;
    const done = new Promise<void>((res) => (allDone = res));
    const clients: tls.TLSSocket[] = [];
    for (let i = 0; i < watchers; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, watchers - i) }, () => new Promise<void>((res, rej) => {
          let got = 0;
          const c = tls.connect({ host: '127.0.0.1', port, ca: cert, checkServerIdentity: () => undefined, minVersion: 'TLSv1.3' }, res);
          c.on('error', rej);
          c.on('data', (d: Buffer) => {
            got += d.length;
            if (got >= want && got - d.length < want && ++complete === watchers) allDone();
          });
          clients.push(c);
        })),
      );
    }
    await ready;
    const t0 = performance.now();
    worker.postMessage('go');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`tls fan-out bound: ${complete}/${watchers} connections complete after 120 s`)), 120_000))),
    ]).finally(() => clearTimeout(timer));
    const seconds = (performance.now() - t0) / 1000;
    worker.postMessage('stop');
    for (const c of clients) c.destroy();
    return { deliveriesPerSecond: (watchers * events) / seconds, seconds };
  } finally {
    await worker.terminate();
  }
}
