/**
 * Polls `pred` every 20 ms until it holds; rejects after `ms`, saying `what` (or, given a function,
 * what it returns then: what was seen by the time it gave up).
 */
export async function until(pred: () => boolean | Promise<boolean>, ms: number, what: string | (() => string)): Promise<void> {
  for (const end = Date.now() + ms; !(await pred()); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${typeof what === 'string' ? what : what()}`);
  }
}
