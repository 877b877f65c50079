// `veloflux setup`: wiring only. Questions (questions.ts) -> answers -> config.yaml (config.ts) or FailoverPool +
// Secrets (kube.ts) -> validated, shown with secrets masked, confirmed, written, optionally applied (apply.ts).
//
// Exit codes: 0 written (and applied when asked), 1 validation, write or apply failed, 2 bad or missing flags,
// 130 interrupted at a prompt.
import { existsSync, readFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { parse as parseYamlText } from 'yaml';
import { request } from 'undici';
import { formatIssues, loadConfigText } from '@veloflux/config/load';
import { restartRequired } from '@veloflux/config/restart';
import type { PodOwned } from '@veloflux/config/restart';
import { podOwnedYaml } from '@veloflux/config/serialize';
import { defaultAnswers, secretsOf } from './answers.ts';
import type { Answers, Target } from './answers.ts';
import { applyConfig, applyKubernetes } from './apply.ts';
import { answersFromConfig, buildConfig } from './config.ts';
import { answersFromManifests, buildKube, kubeText, parseManifests, secretsFileFor } from './kube.ts';
import type { KubeValidator } from './kube.ts';
import { inquirerAsk, terminalRun } from './prompt.ts';
import { collect, flatten, givenFromFlags, parseFlags, unflatten, usage } from './questions.ts';
import type { Ask, Flat } from './questions.ts';
import { configComments, redact, toYaml } from './yaml.ts';

export interface SetupIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Prompts; undefined = no terminal (nothing is asked). */
  readonly ask: Ask | undefined;
  /** Validates a FailoverPool (CRD schema + operator render + proxy loader); see kube.ts. */
  readonly validateKube: KubeValidator;
}

/** The pod-owned fields of a running proxy in config.yaml form (GET /api/v1/config). */
async function runningPodOwned(url: string, token: string): Promise<{ ok: true; view: PodOwned; yaml: Record<string, unknown> } | { ok: false; message: string }> {
  try {
    const res = await request(`${url.replace(/\/+$/, '')}/api/v1/config`, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const body = await res.body.text();
    if (res.statusCode !== 200) {
      let e: { code?: string; message?: string } | undefined;
      try { e = (JSON.parse(body) as { error?: typeof e }).error; } catch { e = undefined; }
      return { ok: false, message: `the proxy refused it: ${res.statusCode} ${e?.code ?? ''} ${e?.message ?? body.slice(0, 300)}`.replace(/\s+/g, ' ').trim() };
    }
    const view = (JSON.parse(body) as { config?: unknown }).config;
    return { ok: true, view: view as PodOwned, yaml: podOwnedYaml(view as PodOwned) };
  } catch (err) {
    return { ok: false, message: `cannot reach ${url}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
}

function valueAt(doc: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), doc);
}

function setAt(doc: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = doc;
  for (const k of keys.slice(0, -1)) {
    if (o[k] === null || typeof o[k] !== 'object') o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete o[last];
  else o[last] = value;
}

const HEADER_CONFIG = 'VeloFlux proxy config, written by `veloflux setup` (run it again to edit this file).\nReference: docs/configuration.md';

class Exit extends Error {
  readonly code: number;
  constructor(code: number, message: string) { super(message); this.code = code; }
}

export async function runSetup(argv: readonly string[], io: SetupIo): Promise<number> {
  try {
    return await setup(argv, io);
  } catch (err) {
    if (err instanceof Exit) {
      if (err.message) io.err(err.message);
      return err.code;
    }
    if ((err as Error).name === 'ExitPromptError') { io.err('veloflux setup: interrupted, nothing written'); return 130; }
    throw err;
  }
}

/** A file setup writes: its text, its mode, and what the terminal shows of it (secrets masked). */
interface OutFile { readonly path: string; readonly text: string; readonly mode: number; readonly shown: string }

/**
 * What setup does for one target (a proxy config file, or Kubernetes manifests): read an existing output for
 * editing, build and validate the result, and apply it. One object per target; `setup` runs the steps in order.
 */
interface TargetSetup {
  /** The answers an existing output file holds; what setup does not ask about is kept for the merge. */
  read(output: string, text: string, pool: string | undefined): Promise<Partial<Answers>>;
  /** The files to write, validated with the same schemas as the proxy (and the CRD). */
  build(answers: Answers, secrets: readonly string[]): Promise<OutFile[]>;
  /** The command that puts the written files to use. */
  next(answers: Answers, files: readonly OutFile[]): string;
  readonly applyQuestion: string;
  apply(answers: Answers, files: readonly OutFile[], values: Flags, ask: Ask | undefined): Promise<void>;
}

type Flags = Extract<ReturnType<typeof parseFlags>, { values: unknown }>['values'];

function configTarget(io: SetupIo): TargetSetup {
  let existing: Record<string, unknown> | undefined;
  return {
    async read(output, text, pool) {
      const loaded = loadConfigText(text);
      if (!loaded.ok) throw new Exit(1, `veloflux setup: ${output} exists but is not a valid config (fix or move it):\n${formatIssues(loaded.issues, output)}`);
      existing = parseYamlText(text) as Record<string, unknown>;
      return answersFromConfig(loaded.config, output, pool);
    },
    async build(answers, secrets) {
      const doc = buildConfig(answers, existing);
      const text = toYaml(doc, HEADER_CONFIG, configComments(doc));
      const loaded = loadConfigText(text);
      if (!loaded.ok) throw new Exit(1, `veloflux setup: the result does not validate (nothing written):\n${formatIssues(loaded.issues)}`);
      const c = loaded.config;
      io.out(`\nvalid: the proxy's schema accepts it (${c.pools.length} pool${c.pools.length === 1 ? '' : 's'}, ${c.pools.reduce((n, p) => n + p.backends.length, 0)} backends, ${c.routes.length} route${c.routes.length === 1 ? '' : 's'}; version ${loaded.version})`);
      const hasSecret = secrets.length > 0 || /smtp_password|secret:/.test(text);
      // The proxy reads notification credentials only from config.yaml: inline is the only form it takes.
      if (hasSecret) io.out(`note: ${answers.output} holds notification credentials inline (the proxy reads them only from its config); it is written 0600: keep it out of version control`);
      return [{ path: answers.output, text, mode: hasSecret ? 0o600 : 0o644, shown: toYaml(redact(doc), HEADER_CONFIG, configComments(doc)) }];
    },
    next: (answers) => `veloflux-proxy --config ${answers.output}   (admin API token: env VELOFLUX_ADMIN_TOKEN or admin.token_file)`,
    applyQuestion: 'Apply it now to a running proxy (PUT /api/v1/config)?',
    async apply(answers, files, values, ask) {
      let url = typeof values['admin-url'] === 'string' ? values['admin-url'] : undefined;
      if (!url && ask) url = await ask.input({ message: 'Admin API URL of the running proxy', default: 'http://127.0.0.1:9000', validate: (v) => (/^https?:\/\/\S+$/.test(v) ? true : 'must be an http:// or https:// URL') });
      let token = typeof values['admin-token'] === 'string' ? values['admin-token'] : io.env['VELOFLUX_ADMIN_TOKEN'];
      if (!token && ask) token = await ask.password({ message: 'Admin API token', validate: (v) => (v === '' ? 'is required' : true) });
      const need = [!url && '--admin-url', !token && '--admin-token (or env VELOFLUX_ADMIN_TOKEN)'].filter(Boolean);
      if (need.length > 0 || !url || !token) throw new Exit(2, `veloflux setup: wrote ${answers.output}; to apply it, missing: ${need.join(', ')}`);
      // What only a restart changes (listen, admin.listen, admin.token_file, dataplane.workers, ...) is the running
      // proxy's: a file written with the defaults would be refused (409) by a proxy on other ports. Take those
      // fields from the proxy, and write the file again so it says what was applied.
      const running = await runningPodOwned(url, token);
      if (!running.ok) throw new Exit(1, `veloflux setup: wrote ${answers.output}, but ${running.message}`);
      let text = files[0]?.text ?? '';
      const doc = parseYamlText(text) as Record<string, unknown>;
      const mine = loadConfigText(text);
      const kept = mine.ok ? restartRequired(running.view, mine.config) : [];
      if (kept.length > 0) {
        for (const path of kept) setAt(doc, path, valueAt(running.yaml, path));
        text = toYaml(doc, HEADER_CONFIG, configComments(doc));
        await writeFile(answers.output, text, { mode: files[0]?.mode ?? 0o600 });
        io.out(`kept the running proxy's ${kept.join(', ')} (a restart would be needed to change them); rewrote ${answers.output}`);
      }
      const r = await applyConfig(url, token, text);
      if (!r.ok) throw new Exit(1, `veloflux setup: wrote ${answers.output}, but the proxy refused it: ${r.message}`);
      io.out(`applied to ${url}: version ${r.version}${r.changed === false ? ' (unchanged)' : ''}`);
    },
  };
}

function kubernetesTarget(io: SetupIo): TargetSetup {
  let existing: ReturnType<typeof parseManifests> | undefined;
  return {
    async read(output, text) {
      const secretsFile = secretsFileFor(output);
      const secretsText = existsSync(secretsFile) ? await readFile(secretsFile, 'utf8') : '';
      const manifests = parseManifests(`${text}\n---\n${secretsText}`);
      if (!manifests.pool) throw new Exit(1, `veloflux setup: ${output} exists but holds no FailoverPool (fix or move it)`);
      existing = manifests;
      return answersFromManifests(manifests, output);
    },
    async build(answers) {
      const kube = buildKube(answers, existing);
      const problems = await io.validateKube(kube);
      if (problems.length > 0) throw new Exit(1, `veloflux setup: the FailoverPool does not validate (nothing written):\n${problems.map((p) => `  ${p}`).join('\n')}`);
      io.out(`\nvalid: the FailoverPool passes the CRD schema and its rules, and renders to a config the proxy accepts`);
      const texts = kubeText(kube);
      const files: OutFile[] = [{ path: answers.output, text: texts.pool, mode: 0o644, shown: texts.pool }];
      if (texts.secrets) files.push({ path: secretsFileFor(answers.output), text: texts.secrets, mode: 0o600, shown: kubeText({ ...kube, secrets: kube.secrets.map((s) => redact(s) as typeof s) }).secrets ?? '' });
      return files;
    },
    next: (_answers, files) => `kubectl apply ${files.slice().reverse().map((f) => `-f ${f.path}`).join(' ')}`,
    applyQuestion: 'Apply it now with kubectl apply?',
    async apply(_answers, files) {
      const r = await applyKubernetes(files.slice().reverse().map((f) => f.text).join('---\n'));
      if (!r.ok) throw new Exit(1, `veloflux setup: wrote ${files.map((f) => f.path).join(' and ')}, but kubectl apply failed: ${r.message}`);
      io.out(r.message);
    },
  };
}

const TARGETS: Record<Target, (io: SetupIo) => TargetSetup> = { config: configTarget, kubernetes: kubernetesTarget };

async function setup(argv: readonly string[], io: SetupIo): Promise<number> {
  const parsed = parseFlags(argv);
  if ('error' in parsed) throw new Exit(2, `veloflux setup: ${parsed.error} (veloflux setup --help lists the flags)`);
  const values = parsed.values;
  if (values['help']) { io.out(usage()); return 0; }
  const ask = values['yes'] === true ? undefined : io.ask;

  const { given, errors } = givenFromFlags(values, io.env, (f) => readFileSync(f, 'utf8'));
  if (errors.length > 0) throw new Exit(2, `veloflux setup: ${errors.length} bad value${errors.length === 1 ? '' : 's'}:\n${errors.map((e) => `  ${e}`).join('\n')}`);

  // The target is known once its question is answered; an existing output file is read by that target.
  const targets = new Map<Target, TargetSetup>();
  const of = (target: Target): TargetSetup => {
    let t = targets.get(target);
    if (!t) { t = TARGETS[target](io); targets.set(target, t); }
    return t;
  };
  const defaultsFor = async (target: Target, output: string): Promise<Flat> => {
    const base = { ...defaultAnswers(target), output };
    if (!existsSync(output)) return flatten(base);
    const found = await of(target).read(output, await readFile(output, 'utf8'), typeof given.pool === 'string' ? given.pool : undefined);
    io.out(`editing existing ${output}`);
    return flatten({ ...base, ...found });
  };

  const collected = await collect(given, defaultsFor, ask);
  if ('missing' in collected) {
    throw new Exit(2, `veloflux setup: missing: ${collected.missing.join(', ')} (${ask ? '' : 'no terminal to ask: '}pass them as flags; veloflux setup --help lists every flag)`);
  }
  const answers = unflatten(collected.flat);
  const target = of(answers.target);

  // Build, validate with the same schemas as the proxy (and the CRD), show.
  const files = await target.build(answers, secretsOf(answers));
  for (const f of files) io.out(`\n--- ${f.path}${f.mode === 0o600 ? ' (secrets masked here; file mode 0600)' : ''}\n${f.shown}`);

  if (ask && !(await ask.confirm({ message: `Write ${files.map((f) => f.path).join(' and ')}?`, default: true }))) {
    io.out('nothing written');
    return 0;
  }
  for (const f of files) {
    await writeFile(f.path, f.text, { mode: f.mode });
    await chmod(f.path, f.mode); // an existing file keeps its old mode otherwise
    io.out(`wrote ${f.path}`);
  }

  let apply = values['apply'] === true;
  if (!apply && ask) apply = await ask.confirm({ message: target.applyQuestion, default: false });
  if (!apply) { io.out(`next: ${target.next(answers, files)}`); return 0; }
  await target.apply(answers, files, values, ask);
  return 0;
}

export function terminalIo(validateKube: KubeValidator): SetupIo {
  const out = (t: string): void => { process.stdout.write(`${t}\n`); };
  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
  return {
    out,
    err: (t) => { process.stderr.write(`${t}\n`); },
    env: process.env,
    ask: interactive ? inquirerAsk(terminalRun, out) : undefined,
    validateKube,
  };
}
