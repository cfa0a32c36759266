/**
 * Help sections every command carries (smallstep style): EXAMPLES and EXIT CODES, appended to
 * commander's generated usage. `test/client-cli/help.test.ts` walks the command tree and fails any
 * command without them.
 */
import type { Command } from 'commander';
import { EXIT, type ExitCode } from './exit-codes.js';

const MEANING: Readonly<Record<ExitCode, string>> = {
  [EXIT.ok]: 'success',
  [EXIT.failure]: 'failure (server unreachable, file unreadable, server refused the operation, …)',
  [EXIT.usage]: 'usage: bad flag or argument, or a prompt with no terminal and no environment variable',
  [EXIT.verification]: 'verification failed (certificate, CRL, signature or server identity)',
  [EXIT.auth]: 'authentication refused (wrong password or passphrase, locked, revoked, no session)',
};

export interface HelpSpec {
  /** Command lines with an optional `# comment` each, shown as `$ sigil …`. */
  examples: string[];
  /** Exit codes this command can return besides 0, 1 and 2 (which every command can). */
  exitCodes?: ExitCode[];
  /** Extra paragraphs (ENVIRONMENT, FILES, …) printed before EXAMPLES, each `TITLE\n  text`. */
  sections?: string[];
}

/** Adds the sections to `cmd`'s help and returns `cmd`, for chaining in builders. */
export function withHelp(cmd: Command, spec: HelpSpec): Command {
  const codes = [...new Set<ExitCode>([EXIT.ok, EXIT.failure, EXIT.usage, ...(spec.exitCodes ?? [])])].sort();
  const parts: string[] = [];
  for (const s of spec.sections ?? []) parts.push(s.trimEnd());
  parts.push('EXAMPLES\n' + spec.examples.map((e) => `  $ ${e}`).join('\n'));
  parts.push('EXIT CODES\n' + codes.map((c) => `  ${c}  ${MEANING[c]}`).join('\n'));
  cmd.addHelpText('after', '\n' + parts.join('\n\n') + '\n');
  return cmd;
}

/** ENVIRONMENT section text for commands that read secrets. */
export function envSection(vars: ReadonlyArray<[string, string]>): string {
  const w = Math.max(...vars.map(([k]) => k.length));
  return 'ENVIRONMENT\n' + vars.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n');
}
