/**
 * What a deletion could not finish after its rows committed, finished in the background.
 *
 * A deletion answers once its rows and tombstone are committed (deletion-order.ts `rowsThenKeys`);
 * the keys that opened those rows and the TRUNCATE checkpoint that drops the rows' old page images
 * from the WAL come after, and can fail on their own (a full disk). Until they succeed the content is
 * still recoverable by whoever holds the files, so waiting for the next start to sweep them (as
 * reconciliation does) leaves "irreversible" true only eventually, and an appliance can run for
 * months. This retries them: first after `firstDelayMs`, then doubling up to `maxDelayMs`, until
 * done or until messaging closes (the next start's reconciliation still covers what is left then).
 *
 * Retrying is safe at any time: the keys named belong to rows already gone, and conversation ids
 * are random and never given again (context.ts `newId`), so destroying every key under a destroyed
 * conversation's id can never reach a newer conversation's keys.
 */
import type { KeysToDestroy, MessageKeyStore } from './ports.js';
import { errorFields, type LogFields } from '../log.js';

export interface LateDestructionDeps {
  keys: Pick<MessageKeyStore, 'destroyKeysAfter'>;
  /** vault.db's TRUNCATE checkpoint. */
  checkpoint: () => Promise<void>;
  log: (event: string, fields: LogFields) => void;
  /** First retry after this long (doubling on each failure). Default 1 s. */
  firstDelayMs?: number;
  /** Longest wait between retries. Default 60 s. */
  maxDelayMs?: number;
}

export class LateDestruction {
  readonly #deps: LateDestructionDeps;
  readonly #first: number;
  readonly #max: number;
  readonly #messageIds = new Set<string>();
  readonly #conversationIds = new Set<string>();
  #checkpoint = false;
  #delay: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<boolean> | undefined;
  #closed = false;

  constructor(deps: LateDestructionDeps) {
    this.#deps = deps;
    this.#first = deps.firstDelayMs ?? 1000;
    this.#max = deps.maxDelayMs ?? 60_000;
    this.#delay = this.#first;
  }

  /** Keys of committed deletions that could not be destroyed: destroyed by a later attempt. */
  keys(what: KeysToDestroy): void {
    for (const id of what.messageIds ?? []) this.#messageIds.add(id);
    for (const id of what.conversationIds ?? []) this.#conversationIds.add(id);
    this.#schedule();
  }

  /** vault.db's TRUNCATE checkpoint after a deletion failed: done by a later attempt. */
  checkpoint(): void {
    this.#checkpoint = true;
    this.#schedule();
  }

  /** Whether anything still waits for an attempt. */
  get pending(): boolean {
    return this.#messageIds.size > 0 || this.#conversationIds.size > 0 || this.#checkpoint;
  }

  /**
   * One attempt now (after the one running, if any). Resolves true when nothing is left. Never
   * throws: a failure is logged and the next attempt scheduled.
   */
  async attempt(): Promise<boolean> {
    while (this.#running) await this.#running;
    if (!this.pending) return true;
    this.#running = this.#attempt().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** No more attempts (messaging closing): the next start's reconciliation sweeps what is left. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #schedule(): void {
    if (this.#closed || this.#timer || !this.pending) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.attempt();
    }, this.#delay);
    this.#timer.unref();
  }

  async #attempt(): Promise<boolean> {
    const what: KeysToDestroy = { messageIds: [...this.#messageIds], conversationIds: [...this.#conversationIds] };
    const checkpoint = this.#checkpoint;
    try {
      if (what.messageIds!.length || what.conversationIds!.length) {
        // The rows are gone already: nothing to wait for.
        await this.#deps.keys.destroyKeysAfter(what, Promise.resolve());
        for (const id of what.messageIds!) this.#messageIds.delete(id);
        for (const id of what.conversationIds!) this.#conversationIds.delete(id);
      }
      // After the keys: destroying them was a write of its own, and the checkpoint is what takes
      // the deleted rows' old page images out of vault.db's WAL.
      if (checkpoint) {
        await this.#deps.checkpoint();
        this.#checkpoint = false;
      }
      this.#delay = this.#first;
      this.#deps.log('messaging.late-destruction-done', {
        count: (what.messageIds?.length ?? 0) + (what.conversationIds?.length ?? 0),
      });
    } catch (err) {
      this.#delay = Math.min(this.#delay * 2, this.#max);
      this.#deps.log('messaging.late-destruction-failed', { ...errorFields(err), ms: this.#delay });
    }
    this.#schedule();
    return !this.pending;
  }
}
