// helm for the chart tests: the binary that test/cluster/build.sh builds, with its cache, config and data in a
// temporary directory (nothing written to the home directory), and a kubeconfig when a test talks to the cluster.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { ensureBinaries } from '../cluster/controlplane.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART = join(ROOT, 'charts/veloflux');
/** Longest a single helm command may take, in milliseconds (install/upgrade against a local apiserver: ~1 s). */
export const HELM_TIMEOUT_MS = 60_000;

let bin: string | undefined;
let home: string | undefined;

function helmBin(): string {
  bin ??= join(ensureBinaries(), 'helm');
  return bin;
}

function helmHome(): string {
  if (home === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'veloflux-helm-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    home = dir;
  }
  return home;
}

export interface HelmResult { code: number; stdout: string; stderr: string }

/** Runs helm; resolves with its exit code and output (rejects only if it cannot be started or times out). */
export function helmRun(args: string[], kubeconfig?: string): Promise<HelmResult> {
  const dir = helmHome();
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    HELM_CACHE_HOME: join(dir, 'cache'),
    HELM_CONFIG_HOME: join(dir, 'config'),
    HELM_DATA_HOME: join(dir, 'data'),
    ...(kubeconfig ? { KUBECONFIG: kubeconfig } : {}),
  };
  return new Promise((resolvePromise, reject) => {
    execFile(helmBin(), args, { env, timeout: HELM_TIMEOUT_MS, maxBuffer: 32 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`helm ${args.join(' ')}: ${err.killed ? `killed after ${HELM_TIMEOUT_MS} ms` : err.message}\n${stderr}`));
        return;
      }
      resolvePromise({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

/** Runs helm and throws with its output unless it exits 0. */
export async function helm(args: string[], kubeconfig?: string): Promise<string> {
  const r = await helmRun(args, kubeconfig);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout.slice(0, 2000)}`);
  return r.stdout;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The objects in a multi-document YAML text (empty documents dropped); duplicate keys are an error. */
export function parseObjects(text: string): KubeObject[] {
  const out: KubeObject[] = [];
  for (const doc of parseAllDocuments(text, { uniqueKeys: true })) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML from helm: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as KubeObject | null;
    if (value) out.push(value);
  }
  return out;
}

/** helm template with `args` (e.g. --set, -f, --api-versions), parsed. */
export async function template(args: string[] = [], release = 'veloflux', namespace = 'veloflux'): Promise<KubeObject[]> {
  return parseObjects(await helm(['template', release, CHART, '--namespace', namespace, ...args]));
}

export function find(objects: KubeObject[], kind: string, name?: string): KubeObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

export function one(objects: KubeObject[], kind: string, name?: string): KubeObject {
  const found = find(objects, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found[0] as KubeObject;
}

export const readRepoFile = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** --api-versions flags that make helm template render as if the Prometheus Operator were installed. */
export const MONITORING_API = ['--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor', '--api-versions', 'monitoring.coreos.com/v1/PrometheusRule'];
