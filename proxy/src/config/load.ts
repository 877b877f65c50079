// config.yaml text -> Config, or every problem with its path (and line, when the text has one).
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { isNode, LineCounter, parseDocument } from 'yaml';
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

/** Parses YAML (JSON is YAML too) and validates it against `schema`. */
export function parseYaml<T>(text: string, schema: Schema<T>, partial = false): { value: T | undefined; issues: Located[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      value: undefined,
      issues: doc.errors.map((e) => {
        const line = lines.linePos(e.pos[0]).line;
        return { path: '(yaml)', message: e.message.split('\n')[0] ?? e.message, line };
      }),
    };
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const ctx: Ctx = { issues: [], partial };
  const value = schema.parse(data ?? undefined, '', ctx);
  const issues = ctx.issues.map((issue) => locate(issue, doc, lines));
  return { value: value === INVALID ? undefined : value, issues };
}

export function loadConfigText(text: string): LoadResult {
  const parsed = parseYaml(text, configSchema);
  if (parsed.value === undefined || parsed.issues.length > 0) return { ok: false, issues: parsed.issues };
  const issues: Issue[] = [];
  const config = resolve(parsed.value, issues);
  if (!config) return { ok: false, issues: issues.map((i) => locateByPath(i, text)) };
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

function locateByPath(issue: Issue, text: string): Located {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  return locate(issue, doc, lines);
}
