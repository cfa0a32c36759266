/**
 * Load-generation parts shared by the benchmarks (bench/*.ts) and the fault tests (test/faults/):
 * a `sigil-server` child process on a temp data dir (so its CPU and RSS are measured apart from
 * the load generator), keep-alive HTTPS clients with client certificates, accounts created through
 * the officer API, signed messages, percentiles and /proc sampling.
 *
 * Lives in bench/lib/ so `make build` compiles it for dist/bench/*.js while `make bench` (which
 * runs only dist/bench/*.js) does not run it.
 *
 * This file is their one import; each part lives beside it: server-proc.ts (the child server),
 * proc-stats.ts (/proc sampling), https-client.ts (`Client`), accounts.ts (officer and users,
 * login), signed-messages.ts (message and delete requests), verify-bounds.ts (the verification
 * bound), report.ts (percentiles, number format, the machine line).
 */
export { createUser, login, officerOf, signB64, type LoadUser } from './accounts.js';
export { Client, type LoadRequest, type LoadResponse } from './https-client.js';
export { procCpuSeconds, procRssMb, procThreadCpuSeconds, threadSplit } from './proc-stats.js';
export { fmt, machineNote, percentile } from './report.js';
export {
  JEMALLOC_CONF,
  REPO_ROOT,
  SERVER_MAIN,
  initDataDir,
  jemallocLibrary,
  repoPath,
  startServerProc,
  type InitJson,
  type ServerProc,
} from './server-proc.js';
export { batchPayload, composeMessage, deleteRequest, sha384b64, type SignedMessage } from './signed-messages.js';
export { BOUND_SAMPLES, syncVerifyBound, verifyBound, verifyBounds, type VerifyBounds } from './verify-bounds.js';
