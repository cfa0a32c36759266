/** Flag definitions shared by the `user` commands, with their allowed values listed in errors. */
import { Option } from 'commander';
import { CLEARANCE_CHOICES, ROLES } from '../../choices.js';

export const clearanceOption = (): Option =>
  new Option('--clearance <level>', 'clearance of the holder').choices(CLEARANCE_CHOICES);

export const roleOption = (): Option => new Option('--role <role>', 'account role').choices(ROLES);

/** The envelope password is shown once; make that plain in the help of commands that print one. */
export const ENVELOPE_NOTE =
  'The envelope (login, one-time password, serial) is printed on stdout once: print it, seal it, hand it over ' +
  'against signature. --envelope-out writes the printable HTML version.';
