/** Web streams of known bytes, for uploads in tests. */

/** A stream of `parts` (one chunk each, pulled one at a time), then closed. */
export function streamOf(parts: Uint8Array | readonly Uint8Array[]): ReadableStream<Uint8Array> {
  const queue = parts instanceof Uint8Array ? [parts] : [...parts];
  return new ReadableStream({
    pull(c) {
      const next = queue.shift();
      if (next) c.enqueue(next);
      else c.close();
    },
  });
}
