/**
 * The size of libuv's thread pool for the server process: the cores + 1. The pool runs every SQLite
 * statement (node-sqlite3), WebCrypto job and argon2 hash; libuv's default is 4 whatever the machine.
 *
 * Why cores + 1: on the 2-core appliance the 4 pool threads, the 2 message check workers, the main
 * thread and V8's helpers all want the same cores. One signed message per request ran at
 * 821–841/s with p99 104–106 ms; with 3 pool threads at 923–958/s, p99 97–102 ms; with 2 at
 * 915–924/s (bench/README.md, seventh session). Batches and logins did not move. Not fewer than
 * cores + 1: argon2 may hash on as many threads as there are cores (accounts/password.ts), and
 * SQLite must keep a thread while it does.
 *
 * It is set in the server's environment — the systemd unit (hardening/apply renders it from the
 * host's cores), `make run`, the benches — not by the server itself: libuv reads
 * UV_THREADPOOL_SIZE once, when the pool first gets work, and Node's ES module loader already reads
 * the server's modules through the pool before any of its code runs (setting it in main.ts was
 * tried: the pool kept 4 threads, test/server/threadpool.test.ts counts them).
 */
import { availableParallelism } from 'node:os';

/** The pool size for `cores` cores. */
export function threadPoolSize(cores: number = availableParallelism()): number {
  return Math.max(1, Math.trunc(cores)) + 1;
}
