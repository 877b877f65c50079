// node:test global setup (--test-global-setup, wired in scripts/test.ts): one control plane per
// test run. It runs in the runner process, before the test files' child processes are spawned, so
// the variable set here reaches every test file; testenv.ts's clusterFromEnv() reads it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_ENV, startControlPlane } from './controlplane.ts';
import type { ClusterInfo, ControlPlane } from './controlplane.ts';

let controlPlane: ControlPlane | undefined;

export async function globalSetup(): Promise<void> {
  controlPlane = await startControlPlane();
  const { stop: _stop, ...info } = controlPlane;
  const file = join(controlPlane.dir, 'cluster.json');
  writeFileSync(file, JSON.stringify(info satisfies ClusterInfo, null, 2), { mode: 0o600 });
  // Only this file path is exported, not KUBECONFIG: a process a test spawns (the operator) should
  // get its credentials explicitly, not inherit the admin's by accident.
  process.env[CLUSTER_ENV] = file;
}

export async function globalTeardown(): Promise<void> {
  await controlPlane?.stop();
}
