/**
 * `sigil watch`: follows the live event stream and prints each new message as it arrives,
 * verified locally. After a dropped connection it reconnects with Last-Event-ID and resumes
 * without loss or duplicates. Ends on SIGINT (exit 0, or 3 if a message failed verification),
 * after `--count N` messages, or when its session ends (exit 4): the server does not count an open
 * stream as use of the session, so an unattended watch does not keep it from idling out.
 */
import { Command } from 'commander';
import { runtimeFor, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { wholeNumber } from '../../flag-numbers.js';

export interface WatchOptions {
  count?: number;
  since?: number;
  json?: boolean;
  /** Aborts the watch cleanly (wired to SIGINT in the binary). */
  signal?: AbortSignal;
}

export function watchCommand(ctx: CommandContext): Command {
  const cmd = new Command('watch')
    .summary('print new messages live, verified')
    .description(
      'Follow new messages live. Each is verified locally before it is shown; a failure is marked loudly. ' +
        'A dropped connection is resumed where it stopped (nothing lost, nothing twice). Ctrl-C ends it. ' +
        'Watching is no use of the session: when the session ends (idle timeout, logout, revocation) watch says so and exits 4; log in again.',
    )
    .option('--count <n>', 'exit after this many messages', wholeNumber('--count', 1))
    .option('--since <seq>', 'first replay every message after this sequence number', wholeNumber('--since', 0))
    .option('--json', 'print one JSON object per line per event')
    .action(async (opts: WatchOptions, c: Command) => {
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await run({ ...opts, signal: ac.signal }, runtimeFor(ctx, c));
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil watch', 'sigil watch --json | jq .body', 'sigil watch --count 1   # wait for the next message'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: WatchOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { ConversationsSchema, DeletedEventSchema, MessageSchema } = await import('../../messaging/api.js');
  const { followEvents } = await import('../../messaging/events.js');
  const { messageJson, messageLines } = await import('../../messaging/render.js');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  const { BadResponseError } = await import('../../errors.js');
  const ms = await MessagingSession.open(rt);
  await ms.trust();
  const ac = new AbortController();
  opts.signal?.addEventListener('abort', () => ac.abort(), { once: true });
  // Without --since, start from the newest message visible now, so that a reconnect before the
  // first new message replays only what arrived meanwhile (the server replays from any id given).
  let since = opts.since;
  if (since === undefined) {
    const { conversations } = await ms.http.get('/v1/conversations', ConversationsSchema);
    since = Math.max(0, ...conversations.map((c) => c.lastSeq));
  }
  const line = (v: unknown): void => void rt.io.stdout.write(JSON.stringify(v) + '\n');
  let seen = 0;
  let failed = 0;
  await followEvents(await ms.endpoint(), {
    lastEventId: since,
    signal: ac.signal,
    onReconnect: (n, last, why) => rt.out.note(`connection lost (${why}); reconnecting from ${last ?? 'now'} (attempt ${n})`),
    onEvent: async (e) => {
      if (e.event === 'ready') {
        // Once per (re)connection, after the replay: scripts learn the stream is live.
        if (rt.json) line({ event: 'ready', ...(JSON.parse(e.data) as object) });
        else rt.out.note('watching for new messages (Ctrl-C to stop)');
        return;
      }
      if (e.event === 'deleted') {
        const d = DeletedEventSchema.parse(JSON.parse(e.data));
        if (rt.json) line({ event: 'deleted', conversation: d.conversation, ids: d.ids ?? null });
        else rt.out.line(d.ids ? `-- ${d.ids.length} message(s) deleted: ${d.ids.join(', ')}` : `-- conversation ${d.conversation} deleted`);
        return;
      }
      if (e.event !== 'message') return;
      const parsed = MessageSchema.safeParse(JSON.parse(e.data));
      if (!parsed.success) throw new BadResponseError('a live message event is not a message');
      const m = parsed.data;
      const v = await ms.verify(m);
      if (!v.ok) failed++;
      if (rt.json) line({ event: 'message', ...messageJson(m, v) });
      else for (const l of messageLines(m, v)) rt.out.line(l);
      seen++;
      if (opts.count !== undefined && seen >= opts.count) ac.abort();
    },
  });
  if (failed > 0) throw new MessageUnverifiedError(`${failed} of ${seen} messages failed verification; do not act on them`);
}
