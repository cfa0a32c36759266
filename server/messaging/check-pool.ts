/**
 * The acceptance crypto of messages, off the main thread: a small pool of worker threads
 * (check-worker.ts) verifies each message's CMS signature, hashes its body and computes its keyed
 * hashes with synchronous node:crypto, in batches.
 *
 * Why not WebCrypto on libuv's pool, as before: every WebCrypto call costs the *calling* thread
 * ~50–80 µs to set up the job and settle its promise, and a message needed about six of them
 * (content digest, verify, body digest, two HMACs…). On the main thread that overhead, not the
 * signature maths, capped the server (bench/README.md). Here the main thread posts one structured
 * clone per batch and the workers spend their time on the verify itself.
 *
 * One pool per process, started on first use; workers are unref'd while idle so they never keep a
 * process (a test, a CLI run) alive, and a worker that dies is replaced and its batches failed.
 */
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { isClearance, type Certificate } from '../../pki/index.js';
import { seal, type CryptoKey } from '../vault/index.js';
import { createWrappedKey, dekAad } from '../vault/key-wrap.js';
import { headerHashInput, subjectInput, type CheckBatch, type CheckReply, type CheckResult, type SealedMessage, type Span, type WireResult } from './check-protocol.js';
import { messageAad, packMessage } from './sealed-message.js';
import type { KeyedHash, MessageCheck, MessageCheckInput, MessageChecker, SignatureCheck, SignatureVerifier } from './ports.js';

/** Most checks in one post. */
const MAX_BATCH = 256;

/**
 * A copy that owns exactly its bytes: structured clone copies a view's whole ArrayBuffer (for a
 * small Buffer, Node's 8 KiB allocation pool). Not `slice()`: on a Buffer that is a view too.
 */
export function own(u: Uint8Array): Uint8Array {
  if (u.byteOffset === 0 && u.byteLength === u.buffer.byteLength) return u;
  const copy = new Uint8Array(u.byteLength);
  copy.set(u);
  return copy;
}

interface Waiting {
  resolve: (r: MessageCheck) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Ends the worker once it has been idle for the pool's idle time. */
  idleTimer?: NodeJS.Timeout;
  /** Batches posted and not answered, by batch id. */
  inFlight: Map<number, Waiting[]>;
}

/** How many check workers a pool starts at most by default: one per core, at most 8. */
export function defaultCheckPoolSize(): number {
  return Math.max(1, Math.min(availableParallelism(), 8));
}

export class CheckPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  #pending: { key: Uint8Array; input: MessageCheckInput; w: Waiting }[] = [];
  #flushQueued = false;
  #nextId = 1;

  readonly #idleMs: number;

  /**
   * @param size - most worker threads (default: the cores, at most 8)
   * @param idleMs - a worker idle this long exits (an idle appliance keeps no ~20 MiB isolates; a
   *   new one starts in tens of milliseconds on the next message). Default 10 s.
   */
  constructor(size = defaultCheckPoolSize(), idleMs = 10_000) {
    this.#size = size;
    this.#idleMs = idleMs;
  }

  /** Worker threads running now. */
  get workers(): number {
    return this.#slots.length;
  }

  /** A {@link MessageChecker} hashing under `key` (the raw `audit-hmac` secret). */
  checker(key: Uint8Array): MessageChecker {
    const k = own(key);
    return (input) => this.#check(k, input);
  }

  /** Stops every worker (tests; a server process simply exits). */
  async close(): Promise<void> {
    const slots = this.#slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  #check(key: Uint8Array, input: MessageCheckInput): Promise<MessageCheck> {
    return new Promise<MessageCheck>((resolve, reject) => {
      this.#pending.push({ key, input, w: { resolve, reject } });
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        // After this turn's other requests have queued theirs: one post carries them all.
        setImmediate(() => this.#flush());
      }
    });
  }

  /**
   * Posts pending checks to idle workers only, a fair share each. A busy worker gets nothing new:
   * what arrives meanwhile waits for the next idle one and leaves as one batch. So an idle
   * appliance posts each message at once, and a loaded one posts few large batches — each post
   * wakes a sleeping thread, which on a busy machine costs far more than the post itself.
   */
  #flush(): void {
    this.#flushQueued = false;
    while (this.#pending.length > 0) {
      const slot = this.#idleSlot();
      if (!slot) return; // the next reply flushes again
      const key = this.#pending[0]!.key;
      let n = 0;
      while (n < this.#pending.length && this.#pending[n]!.key === key) n++;
      const share = Math.min(n, MAX_BATCH, Math.max(1, Math.ceil(this.#pending.length / this.#size)));
      this.#post(slot, key, this.#pending.splice(0, share));
    }
  }

  #post(slot: Slot | Error, key: Uint8Array, list: { input: MessageCheckInput; w: Waiting }[]): void {
    if (slot instanceof Error) {
      for (const { w } of list) w.reject(slot);
      return;
    }
    const id = this.#nextId++;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    if (slot.inFlight.size === 0) slot.worker.ref();
    slot.inFlight.set(id, list.map((p) => p.w));
    const batch = packBatch(id, key, list.map((p) => p.input));
    slot.worker.postMessage(batch, [batch.data.buffer]);
  }

  /** A worker with nothing in flight (started if the pool is not full), an Error if one cannot start, or none. */
  #idleSlot(): Slot | Error | undefined {
    const idle = this.#slots.find((s) => s.inFlight.size === 0);
    if (idle) return idle;
    if (this.#slots.length >= this.#size) return undefined;
    try {
      return this.#spawn();
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }

  #spawn(): Slot {
    // The worker is this module's sibling: check-worker.js once built, check-worker.ts under tests.
    const here = fileURLToPath(import.meta.url);
    // A small young generation: a check allocates little and briefly, and V8's default let each
    // worker grow by ~25 MiB under load (bench/messages RSS 257 → ~210 MiB, same throughput).
    const worker = new Worker(new URL(`./check-worker${extname(here)}`, import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    const slot: Slot = { worker, inFlight: new Map() };
    worker.unref();
    worker.on('message', (reply: CheckReply) => {
      const waiting = slot.inFlight.get(reply.id);
      if (!waiting) return;
      slot.inFlight.delete(reply.id);
      if (slot.inFlight.size === 0) {
        worker.unref();
        slot.idleTimer = setTimeout(() => {
          const i = this.#slots.indexOf(slot);
          if (i < 0 || slot.inFlight.size > 0) return;
          this.#slots.splice(i, 1);
          void worker.terminate();
        }, this.#idleMs);
        slot.idleTimer.unref();
      }
      if (this.#pending.length > 0) this.#flush();
      reply.results.forEach((r, i) => {
        const w = waiting[i];
        if (!w) return;
        if ('error' in r) w.reject(new Error(`message check failed: ${r.error}`));
        // Converted here, not in a `.then` per message: one promise per check, not two.
        else w.resolve(toMessageCheck(fromWire(r, reply.data)));
      });
    });
    const die = (err: Error): void => {
      if (slot.idleTimer) clearTimeout(slot.idleTimer);
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots.splice(i, 1);
      for (const list of slot.inFlight.values()) for (const w of list) w.reject(err);
      slot.inFlight.clear();
      if (this.#pending.length > 0) this.#flush();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`message check worker exited with code ${code}`)));
    this.#slots.push(slot);
    return slot;
  }
}

/**
 * One batch as it crosses to a worker (check-protocol.ts): the jobs' bytes copied back to back into
 * one buffer that is transferred, each distinct signer certificate and conversation key once.
 */
export function packBatch(id: number, key: Uint8Array, inputs: readonly MessageCheckInput[]): CheckBatch {
  let total = 0;
  for (const m of inputs) total += m.signature.length + m.header.length + m.body.length;
  // Its own ArrayBuffer, never a view of Node's pool: the transfer detaches all of it.
  const data = new Uint8Array(total);
  let at = 0;
  const place = (bytes: Uint8Array): Span => {
    data.set(bytes, at);
    const span: Span = [at, bytes.length];
    at += bytes.length;
    return span;
  };
  const signers: Uint8Array[] = [];
  const signerIndex = new Map<Certificate, number>();
  const sealKeys: CryptoKey[] = [];
  const sealIndex = new Map<CryptoKey, number>();
  const jobs = inputs.map((m): CheckBatch['jobs'][number] => {
    let signer = signerIndex.get(m.expectedSigner);
    if (signer === undefined) signerIndex.set(m.expectedSigner, (signer = signers.push(own(m.expectedSigner.der)) - 1));
    let sealWith = -1;
    if (m.sealWith) {
      const known = sealIndex.get(m.sealWith);
      if (known === undefined) sealIndex.set(m.sealWith, (sealWith = sealKeys.push(m.sealWith) - 1));
      else sealWith = known;
    }
    return { id: m.id, signature: place(m.signature), header: place(m.header), body: place(m.body), signer, sealWith };
  });
  return { id, key, data, signers, sealKeys, jobs };
}

/** A worker's result with its byte fields as views of the reply's buffer (one allocation per batch, not per field). */
export function fromWire(r: WireResult, data: Uint8Array): CheckResult {
  if (!r.ok) return r;
  const at = ([offset, length]: Span): Uint8Array => data.subarray(offset, offset + length);
  const { contentDigest, sealed, ...rest } = r;
  return { ...rest, contentDigest: at(contentDigest), ...(sealed ? { sealed: { wrapped: at(sealed.wrapped), blob: at(sealed.blob) } } : {}) };
}

function toMessageCheck(r: CheckResult): MessageCheck {
  if (!r.ok) return { check: { ok: false, reason: r.reason, detail: r.detail }, bodySha384: r.bodySha384, subject: r.subject };
  const label = r.label !== undefined && isClearance(r.label) ? r.label : undefined;
  const check: SignatureCheck = {
    ok: true,
    ...(label ? { label } : {}),
    ...(r.signingTime !== undefined ? { signingTime: new Date(r.signingTime) } : {}),
    contentDigest: r.contentDigest,
  };
  return { check, bodySha384: r.bodySha384, subject: r.subject, headerHash: r.headerHash, ...(r.sealed ? { sealed: r.sealed } : {}) };
}

/** Young-generation limit of a check worker's heap (see #spawn). */
const WORKER_YOUNG_GENERATION_MB = 8;

let shared: CheckPool | undefined;

/** The process's pool (created on first call). */
export function checkPool(): CheckPool {
  return (shared ??= new CheckPool());
}

/**
 * The same checks and sealing on this thread with WebCrypto: used when a caller injects its own
 * `verify` (tests, the volume bench's accept-all verifier).
 */
export function inThreadChecker(verify: SignatureVerifier, keyedHash: KeyedHash): MessageChecker {
  return async (input) => {
    const [check, digest, subject] = await Promise.all([
      verify(input.signature, input.header, input.expectedSigner),
      globalThis.crypto.subtle.digest('SHA-384', input.body),
      keyedHash(subjectInput(input.id)),
    ]);
    const [headerHash, sealed] = check.ok
      ? await Promise.all([
          check.contentDigest ? keyedHash(headerHashInput(check.contentDigest)) : undefined,
          input.sealWith ? sealInThread(input, input.sealWith) : undefined,
        ])
      : [undefined, undefined];
    return {
      check,
      bodySha384: Buffer.from(digest).toString('base64'),
      subject,
      ...(headerHash ? { headerHash } : {}),
      ...(sealed ? { sealed } : {}),
    };
  };
}

/** check-worker.ts's sealing with WebCrypto: a fresh DEK wrapped under the CK, the message sealed under it. */
async function sealInThread(input: MessageCheckInput, ck: CryptoKey): Promise<SealedMessage> {
  const { key, wrapped } = await createWrappedKey(ck, dekAad(input.id));
  return { wrapped, blob: await seal(key, packMessage(input.header, input.signature, input.body), messageAad(input.id)) };
}
