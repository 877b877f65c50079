// crds/failoverpool.yaml is generated (npm run crds): it must be current, describe every field, and have
// no field that could hold a secret inline.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CHANNEL_FIELDS_NOT_IN_CRD, CRD_FILE, INLINE_SECRET_FIELDS, camel, crdYaml, openApiSchema } from '@veloflux/kube/crd';
import { channelSchema } from '@veloflux/config/schema';
import type { Props } from '@veloflux/kube/crd';

test('crds/failoverpool.yaml is what packages/kube/src/crd.ts prints (run `npm run crds`)', () => {
  assert.equal(readFileSync(CRD_FILE, 'utf8'), crdYaml());
});

function walk(p: Props, path: string, visit: (p: Props, path: string) => void): void {
  visit(p, path);
  for (const [k, v] of Object.entries(p.properties ?? {})) walk(v, `${path}.${k}`, visit);
  if (p.items) walk(p.items, `${path}[]`, visit);
  if (p.additionalProperties) walk(p.additionalProperties, `${path}{}`, visit);
}

test('every field has a description; defaults are stated in it', () => {
  const missing: string[] = [];
  const undocumentedDefault: string[] = [];
  walk(openApiSchema(), '', (p, path) => {
    if (path === '.metadata') return; // the apiserver forbids anything but the type there
    if (!p.description) missing.push(path);
    if (p.default !== undefined && !p.description.includes('Default:')) undocumentedDefault.push(path);
  });
  assert.deepEqual(missing, []);
  assert.deepEqual(undocumentedDefault, []);
  const spec = openApiSchema().properties?.spec as Props;
  assert.match(spec.properties?.recoveryInterval?.description ?? '', /Default: 10s\./);
  assert.equal(spec.properties?.recoveryInterval?.pattern, '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$');
});

test('no inline secret: the tempting names are declared only to be refused by CEL, pointing to the *SecretRef field', () => {
  const names: string[] = [];
  walk(openApiSchema(), '', (_p, path) => names.push(path));
  const channel = names.filter((n) => n.startsWith('.spec.notifications.channels[].'));
  const item = (openApiSchema().properties?.spec as Props).properties?.notifications?.properties?.channels?.items as Props;
  const rules = item['x-kubernetes-validations'] ?? [];
  for (const forbidden of ['smtpUser', 'smtpPassword', 'password', 'url', 'secret', 'token']) {
    const ref = INLINE_SECRET_FIELDS[forbidden];
    assert.ok(ref && channel.includes(`.spec.notifications.channels[].${ref}.name`), `${forbidden}: points to an existing Secret reference`);
    const rule = rules.find((r) => r.rule === `!has(self.${forbidden})`);
    assert.ok(rule, `${forbidden}: a CEL rule refuses it`);
    assert.match(rule.message, new RegExp(`^${forbidden} is not allowed inline .* ${ref}$`));
    assert.match(item.properties?.[forbidden]?.description ?? '', /^Not allowed/);
  }
  assert.ok(channel.includes('.spec.notifications.channels[].credentialsSecretRef.name'));
  assert.ok(channel.includes('.spec.notifications.channels[].urlSecretRef.key'));
  assert.ok(channel.includes('.spec.notifications.channels[].hmacSecretRef.name'));
});

test('every notification channel field of config.yaml is in the CRD, or deliberately not (secrets, files)', () => {
  const crd = Object.keys((openApiSchema().properties?.spec as Props).properties?.notifications?.properties?.channels?.items?.properties ?? {});
  const proxy = new Set((channelSchema.describe().oneOf ?? []).flatMap((v) => Object.keys(v.properties ?? {})));
  const missing = [...proxy].filter((f) => !crd.includes(camel(f)) && !CHANNEL_FIELDS_NOT_IN_CRD.includes(f));
  assert.deepEqual(missing, [], 'add these to packages/kube/src/crd.ts (and render.ts), or to CHANNEL_FIELDS_NOT_IN_CRD with the reason');
});
