/**
 * Text from others (message texts, file names, meeting titles, names in the directory, server
 * error messages that quote input) shown on a terminal. No byte of it may move the cursor, clear
 * the screen, retitle the window, reorder what is shown (bidirectional overrides, the "Trojan
 * Source" trick) or, where one line is expected, start a line of its own that reads like another
 * message. Such characters are written as `\xNN` or `\u{NNNN}`. No imports, so output.ts and main.ts
 * can use it without loading pki.
 */

/* eslint-disable no-control-regex */
/** C0 and C1 controls but LF and TAB, DEL, and the bidirectional embeddings, overrides and isolates. */
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
/** The same, and every line or column break: LF, TAB, and the Unicode line and paragraph separators. */
const CONTROLS_AND_BREAKS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/* eslint-enable no-control-regex */

const escaped = (c: string): string => {
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
};

/** Free text (a message's body, several lines): controls escaped, LF and TAB kept. */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, escaped);
}

/**
 * Whether `text` is one line as {@link oneLine} means it (nothing in it would be escaped): the
 * appliance accepts only such file names and meeting titles and places in a header.
 */
export function isOneLine(text: string): boolean {
  return text.search(CONTROLS_AND_BREAKS) === -1;
}

/**
 * Text that must stay on its one line (a name, a file name, a title, a table cell, the error
 * line): controls escaped, LF and TAB too, so that it can neither break a row nor begin a line
 * that looks like the CLI's own, such as a verified message from someone else.
 */
export function oneLine(text: string): string {
  return text.replace(CONTROLS_AND_BREAKS, escaped);
}
