/**
 * `sigil watch --remind LEAD`: the meetings ahead, each said once when its start is LEAD or less
 * away. Fed with the meetings found at the start (`collectMeetings`) and the invitations and
 * cancellations that arrive live, all verified before they get here; checked on a ticker and after
 * every change. A meeting already begun when the watch learns of it is not announced: the point is
 * to be there on time. Pure apart from the clock and the `say` callback, so tests drive it.
 */
import type { ListedMeeting } from '../commands/meeting/list.js';

/** A meeting due, as `say` gets it. */
export interface DueMeeting {
  meeting: ListedMeeting;
  /** Whole minutes to its start, rounded up: at least 1 (a begun meeting is never said). */
  startsInMinutes: number;
}

export class Reminders {
  readonly #pending = new Map<string, ListedMeeting>();
  readonly #said = new Set<string>();

  constructor(
    private readonly leadMs: number,
    private readonly now: () => Date,
    private readonly say: (due: DueMeeting) => void,
  ) {}

  /** Takes a verified meeting in (or its newer state); a cancelled or ended one leaves. */
  add(m: ListedMeeting): void {
    if (m.cancelled || Date.parse(m.end) <= this.now().getTime()) this.#pending.delete(m.id);
    else this.#pending.set(m.id, m);
  }

  /** A verified cancellation by `by`: forgets the meeting if `by` organised it. */
  cancel(id: string, by: string): void {
    if (this.#pending.get(id)?.organiser === by) this.#pending.delete(id);
  }

  /** Says every meeting now due, soonest first, once; forgets those begun. */
  tick(): void {
    const now = this.now().getTime();
    const due = [...this.#pending.values()].sort((a, b) => a.start.localeCompare(b.start));
    for (const m of due) {
      const start = Date.parse(m.start);
      if (start <= now) {
        this.#pending.delete(m.id);
        continue;
      }
      if (start - now > this.leadMs || this.#said.has(m.id)) continue;
      this.#said.add(m.id);
      this.say({ meeting: m, startsInMinutes: Math.ceil((start - now) / 60_000) });
    }
  }

  /** How many meetings are still waiting (for tests and the start note). */
  get size(): number {
    return this.#pending.size;
  }
}
