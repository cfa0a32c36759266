/**
 * `sigil contacts [--department NAME]`: the appliance's people as a tree by department, in rank
 * order within each (the appliance's `ranks`), with the login to write to (`sigil send LOGIN`).
 * Any logged-in user; the server lists active accounts only and never their clearance (API.md
 * "Directory").
 */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import type { DirectoryPerson } from '../../api.js';

export interface ContactsOptions {
  department?: string;
  json?: boolean;
}

export function contactsCommand(ctx: CommandContext): Command {
  const cmd = new Command('contacts')
    .summary('the people you can write to, by department')
    .description(
      'List the active people of the appliance as a tree by department, by rank within each: login (what sigil send ' +
        'takes), full name, rank, and their role when it is not staff. Clearances are not shown (need to know); a ' +
        'message above the recipient’s clearance is refused when sent.',
    )
    .option('--department <name>', 'only this department (case does not matter)')
    .option('--json', 'print {people: [{login, fullName, department, rank?, role}]} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil contacts', "sigil contacts --department 'Signals'", 'sigil contacts --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: ContactsOptions, rt: Runtime): Promise<void> {
  const { DirectorySchema } = await import('../../api.js');
  const { oneLine } = await import('../../terminal-text.js');
  const http = await rt.client({ session: true });
  const query = opts.department === undefined ? '' : `?department=${encodeURIComponent(opts.department)}`;
  const { people } = await http.get(`/v1/directory${query}`, DirectorySchema);
  if (rt.json) return rt.out.json({ people });
  if (people.length === 0) return rt.out.note(opts.department === undefined ? 'no one' : `no one in ${opts.department}`);
  for (const line of contactLines(people, oneLine)) rt.out.line(line);
}

/**
 * The tree: each department once (the server sorts `Ops` and `ops` together; the first spelling
 * names it), its people under it with logins aligned across the whole list. Names are typed by
 * officers: shown with control characters escaped, like message texts.
 */
export function contactLines(people: readonly DirectoryPerson[], escape: (text: string) => string): string[] {
  const width = Math.max(...people.map((p) => escape(p.login).length));
  const lines: string[] = [];
  let department: string | undefined;
  for (const p of people) {
    const key = p.department.toLocaleLowerCase('en');
    if (key !== department) {
      department = key;
      lines.push(escape(p.department));
    }
    const rank = p.rank ? `, ${escape(p.rank)}` : '';
    lines.push(`  ${escape(p.login).padEnd(width)}  ${escape(p.fullName)}${rank}${p.role === 'staff' ? '' : ` (${escape(p.role)})`}`);
  }
  return lines;
}
