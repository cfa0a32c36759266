/** A test consumer of the event hub (push mode), shared by the hub's tests. */
import type { LiveEvent, LiveSink } from '../../../server/messaging/event-hub.js';

export type TestSink = LiveSink & { got: LiveEvent[]; endedWith: boolean | undefined; drain(n: number): void };

/** A consumer that takes `room` events, then says it is congested until `drain()`. */
export function sink(room: number): TestSink {
  return {
    got: [],
    endedWith: undefined,
    deliver(ev) {
      this.got.push(ev);
      return this.got.length < room;
    },
    ended(dropped) {
      this.endedWith = dropped;
    },
    drain(n) {
      room = this.got.length + n;
    },
  };
}
