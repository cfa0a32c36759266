/** The CLI's flag choices are plain constants (fast start-up); they must not drift from pki. */
import t from 'tap';
import { CLEARANCES, DEFAULT_PROFILE, PROFILE_NAMES, REVOCATION_REASON_CODES } from '../../pki/index.js';
import { CLEARANCE_CHOICES, DEFAULT_KEY_ALGORITHM, KEY_ALGORITHMS, REVOCATION_REASONS } from '../../client-cli/choices.js';

t.test('when pki changes its lists then the CLI choices follow (this test fails until they do)', async (t) => {
  t.same([...CLEARANCE_CHOICES], [...CLEARANCES]);
  t.same([...KEY_ALGORITHMS], [...PROFILE_NAMES]);
  t.equal(DEFAULT_KEY_ALGORITHM, DEFAULT_PROFILE);
  t.same([...REVOCATION_REASONS].sort(), Object.keys(REVOCATION_REASON_CODES).sort());
});
