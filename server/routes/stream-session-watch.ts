/**
 * The open streams of one `/v1/events` route (events.ts) and their sessions: one interval for all
 * their keep-alives and periodic session re-checks, one timeout for the earliest session expiry.
 *
 * A stream ends no later than its session stops being valid, with no timer per connection.
 * Sessions ended elsewhere (logout, revocation, a disabled account) are announced by the store, and
 * every open stream is re-checked at once. For expiry (absolute lifetime, capped at the
 * certificate's notAfter, or idle timeout), each lookup of the store answers how long the session
 * stays valid unless used again (`validForMs`, by the store's clock); the stream keeps that instant
 * on the monotonic clock (one number per connection), and ONE timeout per route, armed at the
 * earliest such instant among the open streams, re-checks the streams then due through the store:
 * a session extended meanwhile (its idle deadline moved by other requests) keeps its stream, which
 * is re-armed for the new deadline; an expired one ends it as any other ended session does. The
 * periodic re-check stays as the backstop (e.g. a wall clock stepped forward after a stream
 * learned its expiry).
 */
import type { MessagingRouteDeps } from '../messaging/http.js';
import type { LiveStream } from './live-stream.js';

const KEEP_ALIVE = Buffer.from(': keep-alive\n\n');
/** The longest delay node's timers take (about 24.8 days); a later expiry is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the route does with the watch: a stream opened, a stream closed. */
export interface StreamWatch {
  /** Tracks `s`, whose session expires at `due` (performance.now()) unless used again. */
  track(s: LiveStream, due: number): void;
  untrack(s: LiveStream): void;
}

/**
 * Watches the sessions of the streams a route tracks; `keepAliveMs` is the interval of keep-alives
 * and periodic re-checks (events.ts `eventsRoutes`). Subscribes to the store's ended sessions now.
 */
export function watchStreamSessions(deps: MessagingRouteDeps, keepAliveMs: number): StreamWatch {
  // Every open stream; one interval for all their keep-alives and periodic session re-checks, and
  // one timeout for the earliest session expiry among them.
  const open = new Set<LiveStream>();
  let ticker: NodeJS.Timeout | undefined;
  let expiry: NodeJS.Timeout | undefined;
  /** The instant (performance.now()) `expiry` fires at; Infinity when not armed. */
  let expiryAt = Infinity;

  /** Arms the expiry timeout for `due` unless it already fires no later. */
  const armExpiry = (due: number): void => {
    if (due >= expiryAt) return;
    if (expiry) clearTimeout(expiry);
    expiryAt = due;
    // Never 0: a store whose clock lags the timers answers "valid for 0.3 ms more" (no busy loop).
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(due - performance.now())));
    expiry = setTimeout(onExpiry, delay).unref();
  };
  const disarmExpiry = (): void => {
    if (expiry) clearTimeout(expiry);
    expiry = undefined;
    expiryAt = Infinity;
  };
  /** The expiry timeout fired: re-checks the streams now due, re-arms for the earliest of the rest. */
  const onExpiry = (): void => {
    expiry = undefined;
    expiryAt = Infinity;
    const at = performance.now();
    let due: LiveStream[] | undefined;
    let next = Infinity;
    for (const s of open) {
      if (s.due <= at) (due ??= []).push(s);
      else if (s.due < next) next = s.due;
    }
    if (next !== Infinity) armExpiry(next);
    if (due) recheck(due, false);
  };

  /**
   * Re-checks the sessions of `streams` through the store: those refused end (the subscription
   * closes, the response ends); the others learn their session's next expiry. Streams of one
   * session share one lookup. The periodic re-check (`periodic`) also writes the keep-alives. No
   * re-check is use of the session: an open stream is no sign that anyone is at the workstation, and
   * when the periodic one counted, a stream re-checked more often than the idle timeout (15 s
   * against 30 min by default) kept its session from ever idling out. A stream whose session is
   * used by nothing else ends at the session's idle deadline.
   */
  const recheck = (streams: Iterable<LiveStream>, periodic: boolean): void => {
    const bySession = new Map<string, LiveStream[]>();
    for (const s of streams) {
      s.due = Infinity;
      const key = `${s.token} ${s.fingerprint}`;
      const list = bySession.get(key);
      if (list) list.push(s);
      else bySession.set(key, [s]);
    }
    for (const list of bySession.values()) {
      const { token, fingerprint } = list[0]!;
      // Taken before asking: the store reads its clock after this, so the expiry is never late.
      const asked = performance.now();
      deps.appliance.sessions.resolve(token, fingerprint, { touch: false }).then(
        (session) => {
          const due = asked + session.validForMs;
          for (const s of list) {
            if (s.isEnded || !open.has(s)) continue;
            s.due = due;
            if (periodic && !s.out.writableNeedDrain) s.write(KEEP_ALIVE);
          }
          armExpiry(due);
        },
        () => {
          for (const s of list) endStream(s);
        },
      );
    }
  };
  const tick = (): void => recheck(open, true);
  // A session ended elsewhere (revocation, clearance change, disable, reset, logout): re-check the
  // open streams now. Waiting for the next tick let a downgraded or revoked user's open stream
  // receive up to keepAliveMs of messages, above the new clearance too.
  deps.appliance.sessions.onSessionsEnded(() => {
    if (open.size > 0) recheck(open, false);
  });
  /**
   * Ends a stream whose session was refused: closes the subscription, ends the response (also
   * mid-replay, which stops at its next message; 'close' then untracks it).
   */
  const endStream = (s: LiveStream): void => {
    s.sub.close();
    s.ended();
  };
  /** Tracks `s`, whose session expires at `due` (performance.now()) unless used again. */
  const track = (s: LiveStream, due: number): void => {
    open.add(s);
    s.due = due;
    armExpiry(due);
    ticker ??= setInterval(tick, keepAliveMs).unref();
  };
  const untrack = (s: LiveStream): void => {
    open.delete(s);
    if (open.size === 0) {
      if (ticker) clearInterval(ticker);
      ticker = undefined;
      disarmExpiry();
    }
  };

  return { track, untrack };
}
