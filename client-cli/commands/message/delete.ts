/**
 * `sigil delete <message> | --conversation <login|#group> [--reason R] [--yes]`: irreversible
 * deletion for everyone. Builds and signs the `sigil-delete` statement (server/API.md, "Signed
 * statements") and calls the DELETE route; the server destroys the rows and their keys and keeps
 * only a tombstone. Asks for confirmation on a terminal; without one `--yes` is required.
 */
import { Command } from 'commander';
import { runtimeFor, type CommandContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { confirmOrYes } from '../user/reset.js';
import type { MessagingSession } from '../../messaging/session.js';

export interface DeleteOptions {
  message?: string;
  conversation?: string;
  reason?: string;
  yes?: boolean;
  json?: boolean;
}

export function deleteCommand(ctx: CommandContext): Command {
  const cmd = new Command('delete')
    .summary('irreversibly delete a message or a whole conversation')
    .description(
      'Delete a message (yours; officers: any) or a whole conversation for everyone, irreversibly: the server ' +
        'destroys the messages and the keys that opened them and records a signed tombstone. For a group, ' +
        '--conversation destroys the group itself with its history, as sigil group destroy does.',
    )
    .argument('[message]', 'message id (shown by sigil read)')
    .option('--conversation <login|#group>', 'delete the whole conversation instead')
    .option('--reason <text>', 'why (signed and kept in the audit trail)', 'deleted by the user')
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .option('--json', 'print the tombstone as JSON')
    .action(async (message: string | undefined, opts: DeleteOptions, c: Command) => run({ ...opts, message }, runtimeFor(ctx, c)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      'sigil delete q3Jd0yP1xVfKX2aNw8e9Lg --reason "sent to the wrong person"',
      'sigil delete --conversation bkim --yes',
      "sigil delete --conversation '#ops' --reason 'operation closed' --yes --json",
    ],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: DeleteOptions, rt: Runtime): Promise<void> {
  if (Boolean(opts.message) === Boolean(opts.conversation)) throw new UsageError('give either a message id or --conversation, not both or neither');
  if (opts.message !== undefined && !/^[A-Za-z0-9_-]{22}$/.test(opts.message)) throw new UsageError('<message>: expected a 22-character message id');
  const reason = opts.reason ?? 'deleted by the user';
  if (reason.length < 1 || reason.length > 500) throw new UsageError('--reason: 1 to 500 characters');
  const { MessagingSession, parseRecipient } = await import('../../messaging/session.js');
  if (opts.conversation) parseRecipient(opts.conversation);
  const what = opts.message
    ? `message ${opts.message}`
    : opts.conversation?.startsWith('#')
      ? `group ${opts.conversation} with its whole history`
      : `the whole conversation ${opts.conversation}`;
  await confirmOrYes(rt, opts.yes, `Delete ${what} for everyone? This cannot be undone`);
  const ms = await MessagingSession.open(rt);
  let target: string;
  let path: string;
  if (opts.message) {
    target = `message:${opts.message}`;
    path = `/v1/messages/${encodeURIComponent(opts.message)}`;
  } else {
    const conv = await ms.resolve(opts.conversation as string);
    target = `conversation:${conv.id}`;
    // For a group the server destroys the conversation itself: the group goes with its history,
    // as with sigil group destroy (API.md, DELETE /v1/conversations/:id).
    path = `/v1/conversations/${encodeURIComponent(conv.id)}`;
  }
  const tombstone = await signedDelete(ms, path, target, reason);
  if (rt.json) return rt.out.json(tombstone);
  printTombstone(rt, tombstone);
}

/** Signs the `sigil-delete` statement for `target` and sends it to `DELETE path`. */
export async function signedDelete(ms: MessagingSession, path: string, target: string, reason: string) {
  const { deleteStatement } = await import('../../messaging/header.js');
  const { TombstoneSchema } = await import('../../messaging/api.js');
  const at = ms.rt.io.now();
  const statement = deleteStatement(target, reason, at);
  const signature = await ms.sign(new TextEncoder().encode(statement), undefined, at);
  return ms.http.request('DELETE', path, { reason, statement, signature }, TombstoneSchema);
}

export function printTombstone(rt: Runtime, t: { id: string; deletedBy: string; at: string; reason: string; count: number }): void {
  rt.out.fields([
    ['deleted', `${t.count} message(s)`],
    ['tombstone', t.id],
    ['by', t.deletedBy],
    ['at', t.at],
    ['reason', t.reason],
  ]);
}
