/**
 * The file name a download takes when the user gives no `--out`: made from the attachment's
 * signed name, which the sender chose. It must not reach anywhere but the current folder, nor
 * become a file that something else reads or runs by its name, on Linux or Windows:
 *
 * - only the last component (`/` and `\` both separate folders), never `.` or `..`;
 * - no leading dot: `.bash_login` or `.profile` in a home folder would be run at the next login;
 * - no control or bidirectional-override characters, and none of Windows' `<>:"|?*`;
 * - no trailing dot or space (Windows drops them), no device name (`CON`, `NUL.txt`, `COM1`);
 * - at most 200 characters, keeping the extension.
 *
 * Each refused character becomes `_`. A name with nothing left is `attachment`.
 */

/* eslint-disable no-control-regex */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069<>:"|?*]/g;
/* eslint-enable no-control-regex */
const DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;
const MAX = 200;

/** The name to save an attachment named `signed` under in the current folder. */
export function localName(signed: string): string {
  let name = signed.replace(/\\/g, '/').split('/').pop() ?? '';
  name = name.replace(UNSAFE, '_').replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  if (DEVICE.test(name)) name = `_${name}`;
  if (name.length > MAX) {
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : '';
    name = name.slice(0, MAX - ext.length).replace(/[.\s]+$/, '') + ext;
  }
  return name === '' ? 'attachment' : name;
}
