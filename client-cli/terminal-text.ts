/**
 * Text from others (message texts, file names, meeting titles, names in the directory, server
 * error messages that quote input) shown on a terminal: control characters are written as `\xNN`,
 * so no byte of it can move the cursor, clear the screen or retitle the window. No imports, so
 * output.ts and main.ts can use it without loading pki.
 */

/** Control characters but LF and TAB as `\xNN`: text from others never drives the terminal. */
export function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
