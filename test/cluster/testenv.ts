// What a test file uses to reach the control plane that the global setup started:
//
//   const ns = await withNamespace(t);               // its own namespace, deleted in t.after
//   const core = adminKubeConfig().makeApiClient(CoreV1Api);
//   const asUser = userKubeConfig();                  // the unprivileged static token
//   const file = writeKubeconfig(token, 'operator');  // for a process the test spawns
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, loadAllYaml } from '@kubernetes/client-node';
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import { ADMIN_USER, CLUSTER_ENV, UNPRIVILEGED_USER, kubeconfigFor } from './controlplane.ts';
import type { ClusterInfo } from './controlplane.ts';

let cached: ClusterInfo | undefined;

/** The control plane of this test run, as described by the global setup. */
export function clusterFromEnv(): ClusterInfo {
  if (cached) return cached;
  const file = process.env[CLUSTER_ENV];
  if (!file) {
    throw new Error(
      `${CLUSTER_ENV} is not set: run cluster tests through \`npm test -- <file>\`, whose global setup ` +
        'starts the control plane (test/cluster/global-setup.ts)',
    );
  }
  cached = JSON.parse(readFileSync(file, 'utf8')) as ClusterInfo;
  return cached;
}

/** A client configuration that authenticates with `token`, as `user` (the name is only a label). */
export function kubeConfigFor(token: string, user = 'token-user'): KubeConfig {
  const { server, caData } = clusterFromEnv();
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(server, caData, token, user));
  return kc;
}

/** Client configuration for the admin (system:masters). */
export function adminKubeConfig(): KubeConfig {
  return kubeConfigFor(clusterFromEnv().adminToken, ADMIN_USER);
}

/** Client configuration for the unprivileged user; it may do what RBAC grants UNPRIVILEGED_USER. */
export function userKubeConfig(): KubeConfig {
  return kubeConfigFor(clusterFromEnv().userToken, UNPRIVILEGED_USER);
}

/**
 * Writes a kubeconfig file for `token` into the run's directory (removed at teardown) and returns
 * its path, for a process the test starts, e.g. the operator with a service-account token.
 */
export function writeKubeconfig(token: string, user = 'token-user'): string {
  const { server, caData, dir } = clusterFromEnv();
  const file = join(dir, `${user}-${randomBytes(4).toString('hex')}.kubeconfig`);
  writeFileSync(file, kubeconfigFor(server, caData, token, user), { mode: 0o600 });
  return file;
}

/**
 * Creates a namespace unique to this test and deletes it when the test ends. Without a
 * controller-manager a deleted namespace stays Terminating, which is harmless: the whole
 * control plane goes at the end of the run.
 */
export async function withNamespace(t: TestContext, prefix = 'vf'): Promise<string> {
  const slug = `${prefix}-${t.name}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 50).replace(/-+$/, '');
  const name = `${slug}-${randomBytes(3).toString('hex')}`;
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name, labels: { 'veloflux.dev/test': 'true' } } } });
  t.after(async () => {
    await core.deleteNamespace({ name });
  });
  return name;
}

/**
 * A token for service account `name` in `namespace` (created if missing), from the TokenRequest
 * API, so a test can run a process under a service account bound to a (Cluster)Role.
 */
export async function serviceAccountToken(namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  try {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  const review = await core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], expirationSeconds } },
  });
  const token = review.status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
  return token;
}

/**
 * Creates (or updates) the CustomResourceDefinitions in a YAML text, e.g. a file from crds/, and
 * waits until each is Established and every served version answers a list (Established comes a
 * moment before the REST endpoint exists). They stay for the rest of the run; install the shipped CRDs
 * from every test file that needs them, concurrent installs of the same file are fine.
 *
 * The YAML goes through client-node's loadAllYaml, which maps wire names such as
 * `x-kubernetes-validations` onto the typed model's `x_kubernetes_validations`. A plain object
 * from another YAML parser would lose those fields silently when client-node serializes it.
 */
export async function installCrds(yaml: string): Promise<V1CustomResourceDefinition[]> {
  const kc = adminKubeConfig();
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const objects = kc.makeApiClient(CustomObjectsApi);
  const crds = (loadAllYaml(yaml) as V1CustomResourceDefinition[]).filter((o) => o?.kind === 'CustomResourceDefinition');
  const installed: V1CustomResourceDefinition[] = [];
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    try {
      await ext.createCustomResourceDefinition({ body: crd });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      const current = await ext.readCustomResourceDefinition({ name });
      await ext.replaceCustomResourceDefinition({
        name,
        body: { ...crd, metadata: { ...crd.metadata, resourceVersion: current.metadata?.resourceVersion } },
      });
    }
    installed.push(
      await waitFor(`CRD ${name} to be Established`, async () => {
        const got = await ext.readCustomResourceDefinition({ name });
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? got : undefined;
      }),
    );
    for (const version of crd.spec.versions.filter((v) => v.served)) {
      const { group, names } = crd.spec;
      await waitFor(`${names.plural}.${group}/${version.name} to be served`, () =>
        objects.listClusterCustomObject({ group, version: version.name, plural: names.plural }),
      );
    }
  }
  return installed;
}

/**
 * Calls `check` until it returns a value other than undefined, or throws after `timeoutMs` with the
 * last error or value it saw. For conditions the API only reaches eventually (CRD established,
 * RBAC caches updated, a proxy serving a pushed config).
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, pollMs = 100): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown = 'not checked yet';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      last = 'condition not met';
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last)}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
