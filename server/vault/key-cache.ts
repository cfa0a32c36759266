/**
 * The unwrapped keys a Keystore keeps in memory (keystore.ts) — message keys DEK and conversation
 * keys CK, each in an LRU — and the epoch every destroy bumps, so that an unwrap that raced a
 * destroy does not put the destroyed key back.
 */
import { Lru } from './lru.js';
import type { CryptoKey } from './crypto-types.js';

/** No conversations: for {@link KeyCache.forget} of message keys only. */
const NO_CONVERSATIONS: ReadonlySet<string> = new Set();

/** Unwrapped DEKs and CKs, and the destroy epoch. */
export class KeyCache {
  /** DEKs by message id, with the conversation they belong to (a conversation's destroy drops them). */
  readonly deks: Lru<string, { convId: string; key: CryptoKey }>;
  /** CKs by conversation id. */
  readonly cks: Lru<string, CryptoKey> = new Lru(1_000);
  /** Bumped by every destroy, so an unwrap that raced a destroy does not refill the cache. */
  #epoch = 0;

  /** `dekCapacity`: unwrapped message keys kept. */
  constructor(dekCapacity: number) {
    this.deks = new Lru(dekCapacity);
  }

  /** The destroy epoch: an unwrap stores its key only if this has not changed since it began. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Before a destroy: bumps the epoch and drops the message keys of `msgIds`, and the CKs of
   * `convIds` with every message key under them.
   */
  forget(msgIds: readonly string[], convIds: ReadonlySet<string> = NO_CONVERSATIONS): void {
    this.#epoch++;
    for (const id of msgIds) this.deks.delete(id);
    for (const c of convIds) this.cks.delete(c);
    if (convIds.size > 0) this.deks.deleteWhere((v) => convIds.has(v.convId));
  }

  /** Drops every cached key (the keystore closes). */
  clear(): void {
    this.deks.clear();
    this.cks.clear();
  }
}
