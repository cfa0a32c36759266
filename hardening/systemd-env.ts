/**
 * How systemd reads environment variables for a service, ported from its C so that `check` sees the
 * variables systemd would set (unit-environment.ts reads LD_PRELOAD for `unit.preload`): the words of
 * an `Environment=` value (extract_first_word() with EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE) and the
 * assignments of an `EnvironmentFile=` (parse_env_file_internal(), systemd 254 and later).
 *
 * Why a port and no library: no maintained npm package reads systemd's quoting and escapes, and a
 * reading looser or stricter than systemd's would let `LD_PRELOAD` through unseen (an escaped
 * name, `LD_\x50RELOAD`, is LD_PRELOAD to systemd). Where systemd rejects the syntax, so does this.
 */

/** The escapes systemd's cunescape_one() reads as one character. */
const SIMPLE_ESCAPES = new Map([
  ['a', '\x07'], ['b', '\b'], ['f', '\f'], ['n', '\n'], ['r', '\r'], ['t', '\t'], ['v', '\v'],
  ['\\', '\\'], ['"', '"'], ["'", "'"], ['s', ' '],
]);

/**
 * The character the escape at `text[i]` (after its backslash) stands for and how many characters it
 * takes, as systemd's cunescape_one() reads it; undefined for one systemd rejects (unknown, or NUL).
 */
function unescapeOne(text: string, i: number): { char: string; length: number } | undefined {
  const c = text[i];
  const simple = SIMPLE_ESCAPES.get(c);
  if (simple !== undefined) return { char: simple, length: 1 };
  const hex = (n: number): number | undefined => {
    const d = text.slice(i + 1, i + 1 + n);
    return d.length === n && /^[0-9a-fA-F]+$/.test(d) ? parseInt(d, 16) : undefined;
  };
  let code: number | undefined;
  let length = 0;
  if (c === 'x') [code, length] = [hex(2), 3];
  else if (c === 'u') [code, length] = [hex(4), 5];
  else if (c === 'U') [code, length] = [hex(8), 9];
  else if (/^[0-7]{3}$/.test(text.slice(i, i + 3))) [code, length] = [parseInt(text.slice(i, i + 3), 8), 3];
  if (code === undefined || code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return undefined;
  if (length === 3 && code > 0xff) return undefined;
  return { char: String.fromCodePoint(code), length };
}

const isBlank = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r';

/**
 * The words of an `Environment=` value as systemd splits them (extract_first_word() with
 * EXTRACT_CUNESCAPE|EXTRACT_UNQUOTE): blanks separate words, quotes of either kind group anywhere
 * in a word, a backslash escapes C-style inside quotes too. Undefined where systemd finds the
 * syntax invalid (an unknown escape, an unclosed quote): it then ignores the rest of the line.
 */
export function environmentWords(value: string): string[] | undefined {
  const words: string[] = [];
  let i = 0;
  for (;;) {
    while (i < value.length && isBlank(value[i])) i++;
    if (i >= value.length) return words;
    let word = '';
    let quote: string | undefined;
    for (; i < value.length; i++) {
      const c = value[i];
      if (c === '\\') {
        const escape = unescapeOne(value, i + 1);
        if (!escape) return undefined;
        word += escape.char;
        i += escape.length;
      } else if (quote !== undefined) {
        if (c === quote) quote = undefined;
        else word += c;
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (isBlank(c)) {
        break;
      } else {
        word += c;
      }
    }
    if (quote !== undefined) return undefined;
    words.push(word);
  }
}

/** One assignment of an environment file. */
export interface EnvFileAssignment {
  readonly name: string;
  readonly value: string;
  readonly line: number;
}

/**
 * The assignments of a file named by `EnvironmentFile=`, as systemd reads it (the state machine of
 * parse_env_file_internal(), systemd 254 and later): shell-like `NAME=value` with `#`/`;` comments,
 * single quotes literal, double quotes with `\"`, `\\`, `` \` `` and `\$` escapes, a backslash before a
 * newline continuing the value. Older systemd also continued a comment ending in a backslash into
 * the next line; reading that line as an assignment judges more, never less.
 */
export function parseEnvFile(text: string): EnvFileAssignment[] {
  const out: EnvFileAssignment[] = [];
  const NEWLINE = '\n\r';
  type State = 'preKey' | 'key' | 'preValue' | 'value' | 'valueEscape' | 'single' | 'double' | 'doubleEscape' | 'comment' | 'commentEscape';
  let state: State = 'preKey';
  let key = '';
  let value = '';
  let line = 1;
  let keyLine = 1;
  let keyBlank = -1; // where trailing blanks of the key start, -1 when none
  let valueBlank = -1;
  const push = (): void => {
    out.push({ name: keyBlank >= 0 ? key.slice(0, keyBlank) : key, value, line: keyLine });
    key = '';
    value = '';
  };
  for (const c of text) {
    if (c === '\0') break;
    switch (state) {
      case 'preKey':
        if (c === '#' || c === ';') state = 'comment';
        else if (!isBlank(c)) [state, key, keyBlank, keyLine] = ['key', c, -1, line];
        break;
      case 'key':
        if (NEWLINE.includes(c)) [state, key] = ['preKey', ''];
        else if (c === '=') [state, valueBlank] = ['preValue', -1];
        else {
          if (!isBlank(c)) keyBlank = -1;
          else if (keyBlank < 0) keyBlank = key.length;
          key += c;
        }
        break;
      case 'preValue':
        if (NEWLINE.includes(c)) {
          state = 'preKey';
          push();
        } else if (c === "'") state = 'single';
        else if (c === '"') state = 'double';
        else if (c === '\\') state = 'valueEscape';
        else if (!isBlank(c)) [state, value] = ['value', value + c];
        break;
      case 'value':
        if (NEWLINE.includes(c)) {
          state = 'preKey';
          if (valueBlank >= 0) value = value.slice(0, valueBlank);
          push();
        } else if (c === '\\') [state, valueBlank] = ['valueEscape', -1];
        else {
          if (!isBlank(c)) valueBlank = -1;
          else if (valueBlank < 0) valueBlank = value.length;
          value += c;
        }
        break;
      case 'valueEscape':
        state = 'value';
        if (!NEWLINE.includes(c)) value += c;
        break;
      case 'single':
        if (c === "'") state = 'preValue';
        else value += c;
        break;
      case 'double':
        if (c === '"') state = 'preValue';
        else if (c === '\\') state = 'doubleEscape';
        else value += c;
        break;
      case 'doubleEscape':
        state = 'double';
        if ('"\\`$'.includes(c)) value += c;
        else if (c !== '\n') value += `\\${c}`;
        break;
      case 'comment':
        if (c === '\\') state = 'commentEscape';
        else if (NEWLINE.includes(c)) state = 'preKey';
        break;
      case 'commentEscape':
        state = NEWLINE.includes(c) ? 'preKey' : 'comment';
        break;
    }
    if (c === '\n') line++;
  }
  if (['preValue', 'value', 'valueEscape', 'single', 'double', 'doubleEscape'].includes(state)) {
    if (state === 'value' && valueBlank >= 0) value = value.slice(0, valueBlank);
    push();
  }
  return out;
}
