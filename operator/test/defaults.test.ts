// The chart's values.yaml says what the operator's defaults module says (operator/src/defaults.ts): one place
// for every default, checked, so installing the chart and running the operator bare behave the same.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { parseDuration } from '@veloflux/config/duration';
import { DEFAULTS } from '@veloflux/config/defaults';
import { DEFAULT_GRACE_MS } from '@veloflux/proxy/runtime/proxy';
import { OPERATOR_DEFAULTS as D } from '../src/defaults.ts';

const chart = (file: string): string => readFileSync(new URL(`../../charts/veloflux/${file}`, import.meta.url), 'utf8');
interface Values {
  operator: { workers: number; leaderElection: { leaseDuration: string; renewDeadline: string; retryPeriod: string }; resync: string; metricsPort: number };
  proxy: { workers: string; adminPort: number; terminationGracePeriodSeconds: number };
}
const values = parse(chart('values.yaml')) as Values;

test('operator values: workers, lease timings, resync and the metrics port are the operator\'s defaults', () => {
  const op = values.operator;
  assert.deepEqual(
    [op.workers, parseDuration(op.leaderElection.leaseDuration), parseDuration(op.leaderElection.renewDeadline), parseDuration(op.leaderElection.retryPeriod), parseDuration(op.resync), `:${op.metricsPort}`],
    [D.workers, D.leaseDurationMs, D.renewDeadlineMs, D.retryPeriodMs, D.resyncMs, D.metricsAddress],
  );
});

test('proxy values: the admin port the operator calls, the proxy\'s worker default, a grace period longer than the proxy\'s drain', () => {
  assert.equal(values.proxy.adminPort, D.adminPort);
  assert.equal(values.proxy.adminPort, Number(DEFAULTS.adminListen.split(':').pop()));
  assert.equal(values.proxy.workers, String(DEFAULTS.dataplane.workers));
  // SIGTERM: the proxy drains for DEFAULT_GRACE_MS; Kubernetes must not SIGKILL it before that.
  assert.ok(values.proxy.terminationGracePeriodSeconds * 1000 > DEFAULT_GRACE_MS, `${values.proxy.terminationGracePeriodSeconds}s <= ${DEFAULT_GRACE_MS}ms`);
});

test('the token Secret the chart names by default is the operator\'s default for a release named after the chart', () => {
  const name = (parse(chart('Chart.yaml')) as { name: string }).name;
  assert.match(chart('templates/_helpers.tpl'), /printf "%s-admin-token" \(include "veloflux\.fullname" \.\)/);
  assert.equal(D.tokenSecret, `${name}-admin-token`);
});
