/**
 * Review finding: `sigil cert revoke --help` told officers to run `sigil crl publish` afterwards,
 * although the appliance publishes a new CRL before it answers a revocation (server/API.md).
 */
import t from 'tap';
import { allCommands, buildProgram, commandPath } from '../../client-cli/program.js';
import { terminalPrompter } from '../../client-cli/prompt.js';

const io = {
  stdout: { write: () => true },
  stderr: { write: () => true },
  env: {},
  prompter: terminalPrompter({ env: {} }),
  now: () => new Date(),
  stderrIsTTY: false,
};

t.test('when an officer reads sigil cert revoke --help then it says the CRL is already published', async (t) => {
  const revoke = allCommands(buildProgram({ io })).find((c) => commandPath(c) === 'sigil cert revoke');
  if (!revoke) throw new Error('no sigil cert revoke command');
  let help = '';
  revoke.configureOutput({ writeOut: (s) => void (help += s), writeErr: (s) => void (help += s) });
  revoke.outputHelp();
  const text = help.replace(/\s+/g, ' ');
  t.notMatch(text, /crl publish/, 'no extra step to run');
  t.match(text, /publishes a new CRL listing it before it answers/);
});
