/**
 * Ctrl-C, `kill` and a closed terminal turned into an abort (reason: the signal's name) around work
 * that must clean up after itself — a download's partial file, a send's uploads — instead of the
 * default death, which would leave that behind. Only around that work: elsewhere the default death
 * is the quickest way out. `on`, not `once` (as in watch.ts): a second Ctrl-C during the clean-up
 * must not kill it half-way.
 */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const stop = (sig: NodeJS.Signals): void => ac.abort(sig);
  for (const s of SIGNALS) process.on(s, stop);
  try {
    return await work(ac.signal);
  } finally {
    for (const s of SIGNALS) process.off(s, stop);
  }
}

/** The signal's name an {@link interruptible} abort carries, or 'aborted'. */
export function abortReason(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : 'aborted';
}
