/** The one table from failures to exit codes, and the progress bar's TTY rule. */
import { CommanderError } from 'commander';
import t from 'tap';
import { EXIT, exitCodeFor, mappedCodes } from '../../client-cli/exit-codes.js';
import { CliError, ServerError, UsageError } from '../../client-cli/errors.js';
import { createProgress } from '../../client-cli/progress.js';

t.test('when an error has a mapped code then its exit code follows the table', async (t) => {
  t.equal(exitCodeFor(new UsageError('x')), EXIT.usage);
  for (const code of ['AUTH_FAILED', 'ACCOUNT_LOCKED', 'NONCE_INVALID', 'CERT_REVOKED', 'CERT_EXPIRED', 'SESSION_INVALID']) {
    t.equal(exitCodeFor(new ServerError(code, 'm', 401)), EXIT.auth, code);
  }
  t.equal(exitCodeFor(new CliError('NOT_TRUSTED', 'm')), EXIT.verification);
  for (const code of ['AUDIT_TREE_DAMAGED', 'AUDIT_CHECKPOINT_MISMATCH']) {
    t.equal(exitCodeFor(new ServerError(code, 'm', 409)), EXIT.verification, `${code}: the appliance says its trail does not verify`);
  }
  t.equal(exitCodeFor(new ServerError('ACCOUNT_EXISTS', 'm', 409)), EXIT.failure, 'unmapped server code is a failure');
  // A refused key is neither a usage error nor a failed verification or login: the officer's
  // request conflicts with what was issued before, like ACCOUNT_EXISTS.
  for (const code of ['KEY_COMPROMISED', 'KEY_IN_USE', 'CRL_NOT_PUBLISHED']) {
    t.equal(exitCodeFor(new ServerError(code, 'm', 409)), EXIT.failure, `${code} is a failure (1)`);
  }
  t.equal(exitCodeFor(new Error('boom')), EXIT.failure);
  t.equal(exitCodeFor(new CommanderError(1, 'commander.unknownOption', 'x')), EXIT.usage);
  for (const [, exit] of mappedCodes()) t.ok([2, 3, 4].includes(exit));
});

t.test('when stderr is a terminal then progress is drawn, otherwise nothing is written', async (t) => {
  let seen = '';
  const sink = { write: (s: string) => void (seen += s) };
  const off = createProgress({ label: 'upload', total: 100, stderr: sink, enabled: false });
  off.update(50);
  off.finish();
  t.equal(seen, '');
  const on = createProgress({ label: 'upload', total: 200, stderr: sink, enabled: true });
  on.update(100);
  on.update(101);
  on.update(200);
  on.finish();
  t.match(seen, /upload \[#{15}\.{15}\]  50%/);
  t.match(seen, /100%/);
  t.equal(seen.match(/ 50%/g)?.length, 1, 'redrawn only when the percentage changes');
});
