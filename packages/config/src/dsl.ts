// A small schema language: each field states its type, default, bounds and documentation once, and that one
// statement gives the TypeScript type, the validator (every problem, each with its path) and the docs.
//
// Why not a JSON-schema validator from npm: the messages must name the path, the bad value and what is
// allowed, durations are a type of their own, and the same statement must also produce the docs (and later
// the CRD schema); a few hundred lines here are easier to keep exact than glue around a generic validator.

export interface Issue {
  /** Where the problem is, e.g. `pools[0].backends[1].health_check.timeout`. */
  readonly path: string;
  /** What is wrong and what is allowed. */
  readonly message: string;
}

export interface Ctx {
  readonly issues: Issue[];
  /** Fragments: missing required fields are not reported (a YAML excerpt shows only some keys). */
  readonly partial: boolean;
}

/** A JSON-schema-like description, for documentation and generated schemas. */
export interface Described {
  type: 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array';
  description: string;
  format?: 'duration';
  default?: unknown;
  enum?: readonly string[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  properties?: Record<string, Described>;
  required?: string[];
  items?: Described;
  oneOf?: Described[];
  /** Shown in docs as the default when the default is computed from another field. */
  defaultText?: string;
  /** A secret: its value is never echoed in a problem, log line or response (`secret()`). */
  secret?: boolean;
}

export const INVALID: unique symbol = Symbol('invalid');
export type Parsed<T> = T | typeof INVALID;

export interface Schema<T> {
  readonly doc: string;
  /** Value used when the key is absent. */
  readonly fallback: { value: T } | undefined;
  /** Absent is fine and gives undefined. */
  readonly optional: boolean;
  parse(value: unknown, path: string, ctx: Ctx): Parsed<T>;
  describe(): Described;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

/** Longest value quoted in a problem; a longer one is cut (a 64 KiB string is not echoed back whole). */
const SHOW_MAX = 200;

export function show(value: unknown): string {
  if (typeof value === 'string') return value.length > SHOW_MAX ? `${JSON.stringify(value.slice(0, SHOW_MAX))}... (${value.length} characters)` : JSON.stringify(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

function fail(ctx: Ctx, path: string, message: string): typeof INVALID {
  ctx.issues.push({ path, message });
  return INVALID;
}

interface Common<T> {
  doc: string;
  default?: T;
  /** Docs text for a default computed elsewhere ("failover.check_interval"). */
  defaultText?: string;
}

function base<T>(opts: Common<T>, parse: Schema<T>['parse'], describe: () => Described): Schema<T> {
  return {
    doc: opts.doc,
    fallback: opts.default === undefined ? undefined : { value: opts.default },
    optional: false,
    parse,
    describe: () => {
      const d = describe();
      d.description = opts.doc;
      if (opts.default !== undefined) d.default = opts.default;
      if (opts.defaultText !== undefined) d.defaultText = opts.defaultText;
      return d;
    },
  };
}

export function string(
  opts: Common<string> & { pattern?: RegExp; patternText?: string; minLength?: number; check?: (v: string) => string | undefined },
): Schema<string> {
  return base(
    opts,
    (v, path, ctx) => {
      if (typeof v !== 'string') return fail(ctx, path, `must be a string, got ${show(v)}`);
      if (opts.minLength !== undefined && v.length < opts.minLength) return fail(ctx, path, 'must not be empty');
      if (opts.pattern && !opts.pattern.test(v)) return fail(ctx, path, `must be ${opts.patternText ?? `a string matching ${opts.pattern}`}, got ${show(v)}`);
      const problem = opts.check?.(v);
      return problem === undefined ? v : fail(ctx, path, problem);
    },
    () => ({ type: 'string', description: '', ...(opts.pattern ? { pattern: opts.pattern.source } : {}) }),
  );
}

export function oneOf<const V extends string>(values: readonly V[], opts: Common<V>): Schema<V> {
  return base(
    opts,
    (v, path, ctx) => {
      if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
        return fail(ctx, path, `must be one of ${values.map((x) => `"${x}"`).join(', ')}, got ${show(v)}`);
      }
      return v as V;
    },
    () => ({ type: 'string', description: '', enum: values }),
  );
}

export function int(opts: Common<number> & { min?: number; max?: number; unit?: string }): Schema<number> {
  const range =
    opts.min !== undefined && opts.max !== undefined ? ` from ${opts.min} to ${opts.max}`
    : opts.min !== undefined ? ` >= ${opts.min}`
    : opts.max !== undefined ? ` <= ${opts.max}` : '';
  return base(
    opts,
    (v, path, ctx) => {
      if (typeof v !== 'number' || !Number.isInteger(v)) return fail(ctx, path, `must be a whole number${range}, got ${show(v)}`);
      if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
        return fail(ctx, path, `must be a whole number${range}, got ${v}`);
      }
      return v;
    },
    () => ({
      type: 'integer', description: '',
      ...(opts.min !== undefined ? { minimum: opts.min } : {}),
      ...(opts.max !== undefined ? { maximum: opts.max } : {}),
    }),
  );
}

/** A number (fractions allowed) within [min, max], e.g. a ratio. */
export function number(opts: Common<number> & { min: number; max: number }): Schema<number> {
  return base(
    opts,
    (v, path, ctx) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < opts.min || v > opts.max) return fail(ctx, path, `must be a number from ${opts.min} to ${opts.max}, got ${show(v)}`);
      return v;
    },
    () => ({ type: 'number', description: '', minimum: opts.min, maximum: opts.max }),
  );
}

export function bool(opts: Common<boolean>): Schema<boolean> {
  return base(
    opts,
    (v, path, ctx) => (typeof v === 'boolean' ? v : fail(ctx, path, `must be true or false, got ${show(v)}`)),
    () => ({ type: 'boolean', description: '' }),
  );
}

/** A duration string held as milliseconds; `min` in milliseconds. */
export function duration(opts: Common<number> & { min?: number }, parse: (s: string) => number | undefined, format: (ms: number) => string): Schema<number> {
  const described = { ...opts, default: undefined, defaultText: opts.defaultText ?? (opts.default === undefined ? undefined : format(opts.default)) };
  const s = base(
    described,
    (v, path, ctx) => {
      const ms = typeof v === 'string' ? parse(v) : undefined;
      if (ms === undefined) return fail(ctx, path, `must be a duration like "2s" (units ms, s, m, h), got ${show(v)}`);
      if (opts.min !== undefined && ms < opts.min) return fail(ctx, path, `must be at least ${format(opts.min)}, got ${show(v)}`);
      return ms;
    },
    () => ({ type: 'string', description: '', format: 'duration' }),
  );
  return { ...s, fallback: opts.default === undefined ? undefined : { value: opts.default } };
}

/** What kind of value `v` is, without any of its content. */
export function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `a string of ${v.length} character${v.length === 1 ? '' : 's'}`;
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return typeof v;
}

/**
 * A secret field (SMTP password, webhook URL, HMAC secret): validated by `inner`, but a problem never shows the
 * value, whatever its type, only what kind of value it was. The docs and generated schemas mark it (`secret`), and
 * `secretPaths()` finds every such field, so redaction (GET /api/v1/config) and the tests follow the schema.
 */
export function secret<T>(inner: Schema<T>): Schema<T> {
  return {
    ...inner,
    parse(v, path, ctx) {
      const own: Ctx = { issues: [], partial: ctx.partial };
      const parsed = inner.parse(v, path, own);
      for (const issue of own.issues) {
        // The inner messages read "must be <what is allowed>, got <value>": keep what is allowed, drop the value.
        const allowed = issue.message.split(', got ')[0] as string;
        const message = typeof v === 'string' && v !== '' && allowed.includes(v) ? 'is not valid' : allowed;
        ctx.issues.push({ path: issue.path, message: `${message}, got ${kindOf(v)} (the value is a secret and not shown)` });
      }
      return parsed;
    },
    describe: () => ({ ...inner.describe(), secret: true }),
  };
}

/**
 * The paths of every secret field of a described schema, `[]` standing for any list index:
 * e.g. `failover.notification.channels[].smtp_password`.
 */
export function secretPaths(d: Described, path = ''): string[] {
  if (d.secret) return [path];
  const out: string[] = [];
  for (const [k, p] of Object.entries(d.properties ?? {})) out.push(...secretPaths(p, path === '' ? k : `${path}.${k}`));
  if (d.items) out.push(...secretPaths(d.items, `${path}[]`));
  for (const v of d.oneOf ?? []) out.push(...secretPaths(v, path));
  return [...new Set(out)];
}

/** A copy of `value` with the value at every secret path replaced by `mask` (paths relative to `value`). */
export function redact(value: unknown, paths: readonly string[], mask: string): unknown {
  const split = paths.map((p) => p.split(/\.|(?=\[\])/).filter((x) => x !== ''));
  const walk = (v: unknown, rest: readonly (readonly string[])[]): unknown => {
    if (rest.length === 0 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) {
      const inner = rest.filter((r) => r[0] === '[]').map((r) => r.slice(1));
      return inner.length === 0 ? v : v.map((x) => walk(x, inner));
    }
    const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    for (const key of Object.keys(out)) {
      const here = rest.filter((r) => r[0] === key);
      if (here.some((r) => r.length === 1)) { if (out[key] !== undefined) out[key] = mask; }
      else if (here.length > 0) out[key] = walk(out[key], here.map((r) => r.slice(1)));
    }
    return out;
  };
  return walk(value, split);
}

/** Absent (or null) is allowed and gives undefined. */
export function optional<T>(inner: Schema<T>): Schema<T | undefined> {
  return {
    doc: inner.doc,
    fallback: undefined,
    optional: true,
    parse: (v, path, ctx) => (v === undefined || v === null ? undefined : inner.parse(v, path, ctx)),
    describe: inner.describe,
  };
}

type Shape = Record<string, Schema<unknown>>;
export type ObjectOf<S extends Shape> = { -readonly [K in keyof S]: Infer<S[K]> };

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** A mapping with exactly these keys (unknown keys are errors). */
export function object<S extends Shape>(shape: S, opts: { doc: string; default?: ObjectOf<S> }): Schema<ObjectOf<S>> {
  const keys = Object.keys(shape);
  const schema: Schema<ObjectOf<S>> = {
    doc: opts.doc,
    fallback: undefined,
    optional: false,
    parse(v, path, ctx) {
      // An absent block is the same as an empty one, so its fields' defaults apply.
      const value = v === undefined ? {} : v;
      if (!isMapping(value)) return fail(ctx, path === '' ? '(top level)' : path, `must be a mapping, got ${show(value)}`);
      let ok = true;
      for (const key of Object.keys(value)) {
        if (!(key in shape)) {
          ok = false;
          fail(ctx, join(path, key), `unknown key; allowed here: ${keys.join(', ')}`);
        }
      }
      const out: Record<string, unknown> = {};
      for (const key of keys) {
        const field = shape[key] as Schema<unknown>;
        const raw = value[key];
        if (raw === undefined) {
          if (field.fallback) out[key] = field.fallback.value;
          else if (field.optional || isObjectSchema(field)) out[key] = field.parse(undefined, join(path, key), ctx);
          else if (!ctx.partial) { ok = false; fail(ctx, join(path, key), `is required (${field.doc})`); }
          continue;
        }
        const parsed = field.parse(raw, join(path, key), ctx);
        if (parsed === INVALID) ok = false;
        else out[key] = parsed;
      }
      return ok ? (out as ObjectOf<S>) : INVALID;
    },
    describe() {
      const properties: Record<string, Described> = {};
      const required: string[] = [];
      for (const key of keys) {
        const field = shape[key] as Schema<unknown>;
        properties[key] = field.describe();
        if (!field.fallback && !field.optional && !isObjectSchema(field)) required.push(key);
      }
      return { type: 'object', description: opts.doc, properties, ...(required.length ? { required } : {}) };
    },
  };
  objectSchemas.add(schema);
  return schema;
}

const objectSchemas = new WeakSet<object>();
function isObjectSchema(s: Schema<unknown>): boolean {
  return objectSchemas.has(s);
}

export function list<T>(item: Schema<T>, opts: { doc: string; minItems?: number; default?: T[] }): Schema<T[]> {
  return base<T[]>(
    opts,
    (v, path, ctx) => {
      if (!Array.isArray(v)) return fail(ctx, path, `must be a list, got ${show(v)}`);
      if (opts.minItems !== undefined && v.length < opts.minItems && !ctx.partial) {
        return fail(ctx, path, `must have at least ${opts.minItems} item${opts.minItems === 1 ? '' : 's'}`);
      }
      const out: T[] = [];
      let ok = true;
      v.forEach((x, i) => {
        const parsed = item.parse(x, `${path}[${i}]`, ctx);
        if (parsed === INVALID) ok = false;
        else out.push(parsed);
      });
      return ok ? out : INVALID;
    },
    () => ({ type: 'array', description: '', items: item.describe(), ...(opts.minItems ? { minItems: opts.minItems } : {}) }),
  );
}

type Tagged<K extends string, V extends Record<string, Schema<object>>> = { [N in keyof V]: Infer<V[N]> & { [P in K]: N } }[keyof V];

/** A mapping whose `tag` key picks which of several object schemas applies. */
export function tagged<const K extends string, V extends Record<string, Schema<object>>>(
  tag: K,
  variants: V,
  opts: { doc: string },
): Schema<Tagged<K, V>> {
  const names = Object.keys(variants);
  return base<Tagged<K, V>>(
    opts,
    (v, path, ctx) => {
      if (!isMapping(v)) return fail(ctx, path, `must be a mapping, got ${show(v)}`);
      const name = v[tag];
      const variant = typeof name === 'string' ? variants[name] : undefined;
      if (!variant) return fail(ctx, join(path, tag), `must be one of ${names.map((n) => `"${n}"`).join(', ')}, got ${show(name)}`);
      const { [tag]: _tag, ...rest } = v;
      const parsed = variant.parse(rest, path, ctx);
      return parsed === INVALID ? INVALID : ({ ...parsed, [tag]: name } as never);
    },
    () => ({
      type: 'object',
      description: '',
      oneOf: names.map((n) => {
        const d = (variants[n] as Schema<object>).describe();
        return { ...d, properties: { [tag]: { type: 'string', description: `"${n}"`, enum: [n] }, ...d.properties } } as Described;
      }),
    }),
  );
}
