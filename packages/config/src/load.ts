// config.yaml text -> Config, or every problem with its path (and line, when the text has one).
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { isNode, Lexer, LineCounter, parseDocument } from 'yaml';
import { INVALID } from './dsl.ts';
import type { Ctx, Issue, Schema } from './dsl.ts';
import { resolve } from './resolve.ts';
import { configSchema } from './schema.ts';
import type { Config } from './types.ts';

export interface Located extends Issue {
  /** 1-based line in the source text, when known. */
  readonly line?: number;
}

export type LoadResult =
  | { readonly ok: true; readonly config: Config; readonly version: string; readonly source: string }
  | { readonly ok: false; readonly issues: readonly Located[] };

/** Version of a config: a short hash of its resolved form, so formatting and comments do not count. */
export function configVersion(config: Config): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
}

/**
 * Limits checked on the raw text before any document is built. Building a YAML document costs far more time and
 * memory than its text (1M nested brackets, 2 MB, took 6-7 s and over 1 GB), so hostile shapes are refused by one
 * pass of the lexer, which is lazy and stops at the first limit crossed. A real config needs a nesting depth of
 * about 8, a few aliases at most, and under 100 tokens per backend; the limits are far above that.
 */
export const YAML_LIMITS = {
  /** Nesting of mappings and sequences, block and flow together (counted a little generously, never less). */
  depth: 64,
  /** Alias nodes (`*name`); each use of an anchor counts. */
  aliases: 100,
  /** Lexer tokens (scalars, indicators, brackets, comments, line breaks): about 1600 pools of two backends. */
  tokens: 100_000,
  /** Characters in one scalar. */
  scalarChars: 64 * 1024,
} as const;

/** The first limit the text crosses, as an issue with its line, or undefined. Linear; stops early. */
export function yamlBombCheck(text: string): Located | undefined {
  let line = 1;
  let tokens = 0;
  let aliases = 0;
  let flow = 0;
  let indicators = 0;
  let indent = 0;
  let lineStart = true;
  let scalarNext = false;
  // Indentation of the enclosing block lines: its length is the block depth of the current line.
  const stack: number[] = [];
  const issue = (message: string): Located => ({ path: '(yaml)', message, line });
  for (const tok of new Lexer().lex(text)) {
    if (++tokens > YAML_LIMITS.tokens) return issue(`the config is too large: more than ${YAML_LIMITS.tokens} YAML tokens`);
    if (tok === '\n' || tok === '\r\n') { line++; lineStart = true; indent = 0; indicators = 0; continue; }
    if (tok === '\x1f') { scalarNext = true; continue; }
    const c = tok[0];
    // Plain, quoted or block scalar content (a block scalar carries its line breaks).
    const scalar = scalarNext || c === '"' || c === "'";
    scalarNext = false;
    if (scalar) {
      if (tok.length > YAML_LIMITS.scalarChars) return issue(`a value of ${tok.length} characters; at most ${YAML_LIMITS.scalarChars} are allowed`);
    } else if (lineStart && (c === ' ' || c === '\t')) { indent = tok.length; continue; }
    else if (c === '#' || c === '\x02' || c === '\ufeff') continue;
    if (lineStart) {
      lineStart = false;
      if (flow === 0) {
        while (stack.length > 0 && (stack[stack.length - 1] as number) >= indent) stack.pop();
        stack.push(indent);
      }
    }
    if (scalar) { /* content, not structure */ }
    else if (c === '*') { if (++aliases > YAML_LIMITS.aliases) return issue(`more than ${YAML_LIMITS.aliases} aliases (*name)`); }
    else if (tok === '[' || tok === '{') flow++;
    else if (tok === ']' || tok === '}') flow = Math.max(0, flow - 1);
    else if (flow === 0 && (tok === '-' || tok === '?' || tok === ':')) indicators++;
    if (stack.length + indicators + flow > YAML_LIMITS.depth) return issue(`nesting deeper than ${YAML_LIMITS.depth} levels of mappings and lists`);
    for (let i = tok.indexOf('\n'); i !== -1; i = tok.indexOf('\n', i + 1)) line++;
  }
  return undefined;
}

/** At most this many problems are reported (a hostile config can have millions). */
const MAX_ISSUES = 100;

/** The first MAX_ISSUES problems (located), and a count of the rest. */
function capIssues(issues: readonly Issue[], at: (i: Issue) => Located): Located[] {
  const out = issues.slice(0, MAX_ISSUES).map(at);
  if (issues.length > MAX_ISSUES) out.push({ path: '(config)', message: `and ${issues.length - MAX_ISSUES} more problems` });
  return out;
}

/** Parses YAML (JSON is YAML too) and validates it against `schema`. */
export function parseYaml<T>(text: string, schema: Schema<T>, partial = false): { value: T | undefined; issues: Located[] } {
  const bomb = yamlBombCheck(text);
  if (bomb) return { value: undefined, issues: [bomb] };
  try {
    return parseChecked(text, schema, partial);
  } catch (err) {
    // The yaml library's own guards (e.g. "Excessive alias count") throw; report them like any other problem,
    // without a stack.
    const message = String((err as Error).message ?? err).split('\n')[0] as string;
    return { value: undefined, issues: [{ path: '(yaml)', message: /alias count/i.test(message) ? `aliases expand to too many values (at most ${YAML_LIMITS.aliases}): an alias bomb` : message }] };
  }
}

function parseChecked<T>(text: string, schema: Schema<T>, partial: boolean): { value: T | undefined; issues: Located[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      value: undefined,
      issues: doc.errors.slice(0, MAX_ISSUES).map((e) => {
        const line = lines.linePos(e.pos[0]).line;
        return { path: '(yaml)', message: e.message.split('\n')[0] ?? e.message, line };
      }),
    };
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const ctx: Ctx = { issues: [], partial };
  const value = schema.parse(data ?? undefined, '', ctx);
  const issues = capIssues(ctx.issues, (issue) => locate(issue, doc, lines));
  return { value: value === INVALID ? undefined : value, issues };
}

export function loadConfigText(text: string): LoadResult {
  const parsed = parseYaml(text, configSchema);
  if (parsed.value === undefined || parsed.issues.length > 0) return { ok: false, issues: parsed.issues };
  const issues: Issue[] = [];
  const config = resolve(parsed.value, issues);
  if (!config) {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines });
    return { ok: false, issues: capIssues(issues, (i) => locate(i, doc, lines)) };
  }
  return { ok: true, config, version: configVersion(config), source: text };
}

export async function loadConfigFile(file: string): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, issues: [{ path: '(file)', message: `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code ?? String(err)}` }] };
  }
  return loadConfigText(text);
}

/** One line per problem, for terminals and logs. */
export function formatIssues(issues: readonly Located[], file?: string): string {
  return issues
    .map((i) => `${file ? `${file}:` : ''}${i.line ? `${i.line}: ` : ' '}${i.path}: ${i.message}`.replace(/^ /, ''))
    .join('\n');
}

function segments(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  return out;
}

function locate(issue: Issue, doc: ReturnType<typeof parseDocument>, lines: LineCounter): Located {
  const parts = segments(issue.path);
  // Walk down as far as the document goes: an unknown key points at its own line, a missing one at its parent.
  for (let n = parts.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(parts.slice(0, n), true);
    if (isNode(node) && node.range) return { ...issue, line: lines.linePos(node.range[0]).line };
    if (n === parts.length && n > 0) {
      // A key whose value is absent or scalar-less: find the key node itself.
      const parent = doc.getIn(parts.slice(0, n - 1), true);
      if (isNode(parent) && 'items' in parent) {
        const pair = (parent.items as { key?: unknown }[]).find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === parts[n - 1]);
        const key = pair?.key;
        if (isNode(key) && key.range) return { ...issue, line: lines.linePos(key.range[0]).line };
      }
    }
  }
  return issue;
}
