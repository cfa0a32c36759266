/**
 * `sigil mute <login|#group>` and `sigil unmute …`: whether the conversation's non-urgent messages
 * are pushed to you live (`sigil watch`). Muted, they still arrive, count as unread and show in
 * `sigil inbox` and `sigil read`; urgent ones are pushed anyway (the server's rule, API.md
 * "Messaging"). The setting is yours alone and kept on the appliance, so every workstation sees it.
 */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface MuteOptions {
  conversation: string;
  json?: boolean;
}

export function muteCommand(ctx: CommandContext): Command {
  return build(ctx, true);
}

export function unmuteCommand(ctx: CommandContext): Command {
  return build(ctx, false);
}

function build(ctx: CommandContext, muted: boolean): Command {
  const cmd = new Command(muted ? 'mute' : 'unmute')
    .summary(muted ? 'stop live pushes of a conversation but for urgent messages' : 'push a muted conversation live again')
    .description(
      muted
        ? 'Mute a conversation with a person (login) or a group (#name) for yourself: sigil watch no longer shows its ' +
            'messages as they arrive, except urgent ones. They still arrive, count as unread and show in sigil inbox and sigil read.'
        : 'Unmute a conversation: sigil watch shows all its messages as they arrive again.',
    )
    .argument('<conversation>', 'login of a person, or #group')
    .option('--json', 'print {id, kind, name, muted} as JSON')
    .action(action1(ctx, 'conversation', (opts: MuteOptions, rt: Runtime) => run(opts, muted, rt)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: muted ? ["sigil mute '#ops'", 'sigil mute bkim --json'] : ["sigil unmute '#ops'"],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: MuteOptions, muted: boolean, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { ConversationSchema } = await import('../../messaging/api.js');
  const { conversationName } = await import('../../messaging/render.js');
  const ms = await MessagingSession.open(rt);
  const conv = await ms.resolve(opts.conversation);
  const after = await ms.http.post(`/v1/conversations/${encodeURIComponent(conv.id)}/mute`, { muted }, ConversationSchema);
  const name = conversationName(after);
  if (rt.json) return rt.out.json({ id: after.id, kind: after.kind, name, muted: after.muted });
  rt.out.fields([
    ['conversation', name],
    ['muted', after.muted ? 'yes: only urgent messages are pushed live' : 'no'],
  ]);
}
