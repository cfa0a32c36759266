/**
 * Reads an nftables ruleset (the `nft -f` file, or `nft list ruleset` output, which share one syntax,
 * nft(8)) into tables, sets and chains, enough for the audit: each base chain's hook and policy, its
 * rules as text (and each rule into matches, statements and verdict), and the elements of named sets.
 * Declarations repeated are merged as nft merges them. Not a full nft grammar: what it cannot read,
 * the controls treat as a failure rather than a pass.
 */
import { NftSyntaxError } from './errors.js';

/** A named set and its elements as written (`10.0.0.0/8`, `10.1.1.1-10.1.1.9`), of every declaration. */
export interface NftSet {
  readonly name: string;
  readonly elements: string[];
}

/** A chain; `hook` and `policy` are set for base chains. Declared more than once, it is one chain. */
export interface NftChain {
  readonly table: string;
  readonly family: string;
  readonly name: string;
  hook: string | undefined;
  policy: string | undefined;
  readonly rules: string[];
}

/** A table (`family name`), merged when declared more than once. */
export interface NftTable {
  readonly family: string;
  readonly name: string;
  readonly sets: Map<string, NftSet>;
  readonly chains: NftChain[];
}

/** A parsed ruleset plus top-level statements the audit cannot follow (`include`, `define`, flat `add rule`). */
export interface NftRuleset {
  readonly tables: NftTable[];
  readonly unsupported: string[];
}

/**
 * Splits one block's text into statements: newline or `;` ends a statement at depth 0, braces nest,
 * `#` starts a comment outside quotes.
 */
function statements(text: string, source: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      cur += ch;
      if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '#') {
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
      continue;
    }
    if (ch === '"') quoted = true;
    if (ch === '{') depth++;
    if (ch === '}') depth--;
    if (depth < 0) throw new NftSyntaxError(source, 'a "}" closes nothing');
    if (depth === 0 && (ch === '\n' || ch === ';')) {
      if (cur.trim() !== '') out.push(cur.trim());
      cur = '';
      continue;
    }
    if (ch === '\\' && text[i + 1] === '\n') {
      i++;
      cur += ' ';
      continue;
    }
    cur += ch;
  }
  if (depth !== 0 || quoted) throw new NftSyntaxError(source, 'a "{" or a quote is never closed');
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

/** `head { body }` → [head, body]; undefined when the statement has no block. */
function block(statement: string): [string, string] | undefined {
  const open = statement.indexOf('{');
  if (open < 0 || !statement.endsWith('}')) return undefined;
  return [statement.slice(0, open).trim(), statement.slice(open + 1, -1)];
}

const collapse = (s: string) => s.replace(/\s+/g, ' ').trim();

/**
 * The set `name` of `table`, created on first mention. nft adds the elements of a set declared again
 * to the first declaration's, so a repeat must not replace them.
 */
function setOf(table: NftTable, name: string): NftSet {
  let set = table.sets.get(name);
  if (!set) table.sets.set(name, (set = { name, elements: [] }));
  return set;
}

function readSet(set: NftSet, body: string, source: string): void {
  for (const line of statements(body, source)) {
    const m = /^elements\s*=\s*\{(.*)\}$/s.exec(line);
    if (m) set.elements.push(...m[1].split(',').map((e) => collapse(e)).filter(Boolean));
  }
}

/**
 * The chain `name` of `table` (itself keyed by family and name), created on first mention. nft merges
 * a chain declared again into the first: its rules are appended, and a `policy` (or `type … hook`)
 * it gives replaces the earlier one. Reading each declaration as a chain of its own would leave a
 * repeat without a hook, where no control looks.
 */
function chainOf(table: NftTable, name: string): NftChain {
  let chain = table.chains.find((c) => c.name === name);
  if (!chain) table.chains.push((chain = { table: table.name, family: table.family, name, hook: undefined, policy: undefined, rules: [] }));
  return chain;
}

function readChain(chain: NftChain, body: string, source: string): void {
  for (const line of statements(body, source)) {
    const text = collapse(line);
    const hook = /^type\s+\S+\s+hook\s+(\S+)/.exec(text);
    const policy = /^policy\s+(\S+)$/.exec(text);
    if (hook) chain.hook = hook[1];
    else if (policy) chain.policy = policy[1];
    else if (!/^(comment|devices|counter$)/.test(text)) chain.rules.push(text);
  }
}

/**
 * Parses a ruleset's text.
 *
 * @param source - a name for messages (a path or "live ruleset").
 * @throws NftSyntaxError when braces or quotes do not balance.
 */
export function parseNftRuleset(text: string, source: string): NftRuleset {
  const tables = new Map<string, NftTable>();
  const unsupported: string[] = [];
  for (const st of statements(text, source)) {
    const b = block(st);
    const head = b ? b[0].split(/\s+/) : [];
    if (!b || head[0] !== 'table') {
      if (!/^flush ruleset$/.test(collapse(st))) unsupported.push(collapse(st));
      continue;
    }
    const [family, name] = head.length >= 3 ? [head[1], head[2]] : ['ip', head[1]];
    const key = `${family} ${name}`;
    let table = tables.get(key);
    if (!table) tables.set(key, (table = { family, name, sets: new Map(), chains: [] }));
    for (const inner of statements(b[1], source)) {
      const ib = block(inner);
      const ihead = ib ? ib[0].split(/\s+/) : [];
      if (ib && (ihead[0] === 'set' || ihead[0] === 'map')) readSet(setOf(table, ihead[1]), ib[1], source);
      else if (ib && ihead[0] === 'chain') readChain(chainOf(table, ihead[1]), ib[1], source);
      else if (!/^flags\b/.test(inner)) unsupported.push(collapse(inner));
    }
  }
  return { tables: [...tables.values()], unsupported };
}

/**
 * One rule read into its parts (nft(8), STATEMENTS): matches, other statements and the verdict, in
 * any order as nft allows. Comments are dropped: they do nothing, and their text must not be taken
 * for a match (`comment "ct state established"`).
 */
export interface NftRule {
  /** The rule as written, whitespace collapsed. */
  readonly text: string;
  /** Matches as written: `ip saddr @lan4`, `tcp dport 8443`, `ct state established,related`. */
  readonly matches: string[];
  /**
   * Other statements. Those this reader knows are read whole (`counter …`, `log …`, `limit …`); from
   * the first word it does not know, the rest of the rule is one entry (`queue flags bypass to 0`),
   * since where an unknown statement ends cannot be told.
   */
  readonly statements: string[];
  /** `accept`, `drop`, `reject with tcp reset`, `jump x`, `vmap { … }`…; undefined when none. */
  readonly verdict: string | undefined;
}

/** Match selectors: a word, or a word and one of its fields (`undefined`: the word alone). */
const MATCH_FIELDS = new Map<string, ReadonlySet<string> | undefined>([
  ['iif', undefined],
  ['oif', undefined],
  ['iifname', undefined],
  ['oifname', undefined],
  ['meta', new Set(['iif', 'oif', 'iifname', 'oifname', 'iiftype', 'oiftype', 'l4proto', 'nfproto', 'protocol', 'pkttype'])],
  ['ct', new Set(['state', 'status', 'direction'])],
  ['ip', new Set(['saddr', 'daddr', 'protocol', 'ttl', 'length', 'version', 'dscp'])],
  ['ip6', new Set(['saddr', 'daddr', 'nexthdr', 'hoplimit', 'length', 'version', 'dscp'])],
  ['tcp', new Set(['sport', 'dport', 'flags'])],
  ['udp', new Set(['sport', 'dport'])],
  ['th', new Set(['sport', 'dport'])],
  ['icmp', new Set(['type', 'code'])],
  ['icmpv6', new Set(['type', 'code'])],
]);
const OPERATORS = new Set(['==', '!=', '<', '>', '<=', '>=', 'eq', 'ne', 'lt', 'gt', 'le', 'ge']);
const LOG_OPTIONS = new Set(['prefix', 'level', 'flags', 'group', 'snaplen', 'queue-threshold']);
const REJECT_WITH = new Set(['tcp', 'icmp', 'icmpv6', 'icmpx']);

/** Words of a rule: a quoted string or a `{ … }` set is one word. */
function ruleWords(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  let quoted = false;
  for (const ch of text) {
    if (quoted) quoted = ch !== '"';
    else if (ch === '"') quoted = true;
    else if (ch === '{') depth++;
    else if (ch === '}') depth--;
    else if (ch === ' ' && depth === 0) {
      if (cur !== '') out.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (cur !== '') out.push(cur);
  return out;
}

// Each reader takes the words and an index, and returns the index after what it read, or undefined
// when the words there are not its kind.

/** `selector [op] value`, the value possibly `a - b` or `flags / mask`; before `vmap`, the selector alone. */
function readMatch(w: string[], i: number): number | undefined {
  if (!MATCH_FIELDS.has(w[i])) return undefined;
  const fields = MATCH_FIELDS.get(w[i]);
  let j = i + 1;
  if (fields) {
    if (!fields.has(w[j])) return undefined;
    j++;
  }
  if (w[j] === 'vmap') return j;
  if (w[j] === 'set') return undefined; // `ip daddr set …` rewrites packets: a statement, not a match
  if (OPERATORS.has(w[j])) j++;
  if (j >= w.length) return undefined;
  j++;
  return (w[j] === '-' || w[j] === '/') && j + 1 < w.length ? j + 2 : j;
}

/** `counter [packets N bytes N]`, `log [options]`, `limit rate [over] N/unit [burst N unit]`. */
function readStatement(w: string[], i: number): number | undefined {
  if (w[i] === 'counter') return w[i + 1] === 'packets' && w[i + 3] === 'bytes' && i + 4 < w.length ? i + 5 : i + 1;
  if (w[i] === 'log') {
    let j = i + 1;
    while (LOG_OPTIONS.has(w[j]) && j + 1 < w.length) j += w[j] === 'flags' && ['tcp', 'ip'].includes(w[j + 1]) ? 3 : 2;
    return Math.min(j, w.length);
  }
  if (w[i] === 'limit' && w[i + 1] === 'rate') return readLimitRate(w, w[i + 2] === 'over' ? i + 3 : i + 2);
  return undefined;
}

/** The rate of a `limit` and its optional burst, from `j`. */
function readLimitRate(w: string[], j: number): number | undefined {
  if (/^\d+\/\w+$/.test(w[j] ?? '')) j += 1;
  else if (/^\d+$/.test(w[j] ?? '') && /^\w+\/\w+$/.test(w[j + 1] ?? '')) j += 2;
  else return undefined;
  if (w[j] !== 'burst' || !/^\d+$/.test(w[j + 1] ?? '')) return j;
  return /^(packets|[kmg]?bytes)$/.test(w[j + 2] ?? '') ? j + 3 : j + 2;
}

/** `accept`, `drop`, `continue`, `return`, `reject [with P [type] C]`, `jump X`, `goto X`, `vmap {…}`. */
function readVerdict(w: string[], i: number): number | undefined {
  if (['accept', 'drop', 'continue', 'return'].includes(w[i])) return i + 1;
  if (['jump', 'goto', 'vmap'].includes(w[i])) return i + 1 < w.length ? i + 2 : undefined;
  if (w[i] !== 'reject') return undefined;
  if (w[i + 1] !== 'with') return i + 1;
  if (!REJECT_WITH.has(w[i + 2])) return undefined;
  const code = w[i + 3] === 'type' ? i + 4 : i + 3;
  return code < w.length ? code + 1 : undefined;
}

type PartKind = 'verdict' | 'match' | 'statement';

/** The part of a rule that starts at word `i` and the index after it; undefined when not understood. */
function readPart(w: string[], i: number): { kind: PartKind; end: number } | undefined {
  const readers: Array<[PartKind, (w: string[], i: number) => number | undefined]> = [
    ['verdict', readVerdict],
    ['match', readMatch],
    ['statement', readStatement],
  ];
  for (const [kind, read] of readers) {
    const end = read(w, i);
    if (end !== undefined) return { kind, end };
  }
  return undefined;
}

/** Reads one rule (as stored in {@link NftChain.rules}) into its parts. */
export function parseNftRule(text: string): NftRule {
  const w = ruleWords(text);
  const rule = { text, matches: [] as string[], statements: [] as string[], verdict: undefined as string | undefined };
  for (let i = 0; i < w.length; ) {
    if (w[i] === 'comment') {
      i += 2;
      continue;
    }
    // After the verdict only a comment may follow; anything else is not understood.
    const part = rule.verdict === undefined ? readPart(w, i) : undefined;
    if (!part) {
      rule.statements.push(w.slice(i).join(' '));
      break;
    }
    const words = w.slice(i, part.end).join(' ');
    if (part.kind === 'verdict') rule.verdict = words;
    else if (part.kind === 'match') rule.matches.push(words);
    else rule.statements.push(words);
    i = part.end;
  }
  return rule;
}
