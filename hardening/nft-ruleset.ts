/**
 * Reads an nftables ruleset (the `nft -f` file, or `nft list ruleset` output, which share one syntax,
 * nft(8)) into tables, sets and chains, enough for the audit: each base chain's hook and policy, its
 * rules as text, and the elements of named sets. Not a full nft grammar: what it cannot read, the
 * controls treat as a failure rather than a pass.
 */
import { NftSyntaxError } from './errors.js';

/** A named set and its elements as written (`10.0.0.0/8`, `10.1.1.1-10.1.1.9`). */
export interface NftSet {
  readonly name: string;
  readonly elements: string[];
}

/** A chain; `hook` and `policy` are set for base chains. */
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
      if (ib && (ihead[0] === 'set' || ihead[0] === 'map')) {
        const elements: string[] = [];
        for (const line of statements(ib[1], source)) {
          const m = /^elements\s*=\s*\{(.*)\}$/s.exec(line);
          if (m) elements.push(...m[1].split(',').map((e) => collapse(e)).filter(Boolean));
        }
        table.sets.set(ihead[1], { name: ihead[1], elements });
      } else if (ib && ihead[0] === 'chain') {
        const chain: NftChain = { table: name, family, name: ihead[1], hook: undefined, policy: undefined, rules: [] };
        for (const line of statements(ib[1], source)) {
          const text = collapse(line);
          const hook = /^type\s+\S+\s+hook\s+(\S+)/.exec(text);
          const policy = /^policy\s+(\S+)$/.exec(text);
          if (hook) chain.hook = hook[1];
          else if (policy) chain.policy = policy[1];
          else if (!/^(comment|devices|counter$)/.test(text)) chain.rules.push(text);
        }
        table.chains.push(chain);
      } else if (!/^flags\b/.test(inner)) {
        unsupported.push(collapse(inner));
      }
    }
  }
  return { tables: [...tables.values()], unsupported };
}
