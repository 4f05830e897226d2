// dmctl lint agrees with the API server: every manifest the admission tests (test/e2e/api.test.ts)
// see rejected is rejected here with the same field or message, and every one they see accepted
// is accepted here. Those tests read the same directories, so a new fixture is checked by both.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { dataMigrationCrd } from '../../src/api/crd.ts';
import { compileError, isTransitionRule } from '../../src/cli/crd-cel-rules.ts';
import type { CrdSchema } from '../../src/cli/crd-schema-check.ts';
import { crdSchemaOf, lintText } from '../../src/cli/lint.ts';

const root = new URL('../../', import.meta.url).pathname;
const invalidDir = join(root, 'test', 'fixtures', 'invalid');
const samplesDir = join(root, 'config', 'samples');
const validDir = join(root, 'test', 'fixtures', 'valid');
const crdFile = join(root, 'crds', 'dataops.dev_datamigrations.yaml');

const minimal = (extra = ''): string => `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: orders}
spec:
  source: {engine: mysql, secretRef: {name: src}}
  target: {engine: postgres, secretRef: {name: dst}}
  tables: [{name: orders}]
${extra}`;

for (const file of readdirSync(invalidDir).filter((f) => f.endsWith('.yaml')).sort()) {
  test(`lint rejects ${file} as the API server does`, (t) => {
    const text = readFileSync(join(invalidDir, file), 'utf8');
    const expected = /^# expect: (.+)$/m.exec(text)?.[1];
    if (expected === undefined) throw new Error(`${file} has no "# expect:" line`);
    const [result, ...rest] = lintText(text);
    t.is(rest.length, 0);
    t.true((result?.errors.length ?? 0) > 0, `${file} passed lint`);
    t.true(result?.errors.some((e) => e.includes(expected)), `expected "${expected}" in:\n${result?.errors.join('\n')}`);
  });
}

for (const file of readdirSync(samplesDir).filter((f) => f.endsWith('.yaml')).sort()) {
  test(`lint accepts the sample ${file}, as the API server does`, (t) => {
    const results = lintText(readFileSync(join(samplesDir, file), 'utf8'));
    t.true(results.length > 0, 'the sample holds a DataMigration');
    for (const result of results) t.deepEqual(result.errors, [], result.name);
  });
}

for (const file of readdirSync(validDir).filter((f) => f.endsWith('.yaml')).sort()) {
  test(`lint accepts ${file}, which the API server admits (test/e2e/admission-limits.test.ts)`, (t) => {
    const results = lintText(readFileSync(join(validDir, file), 'utf8'));
    t.is(results.length, 1);
    t.deepEqual(results[0]?.errors, []);
  });
}

test('lint accepts the admission tests\' minimal manifest and applies the CRD\'s defaults', (t) => {
  const [result] = lintText(minimal());
  t.deepEqual(result?.errors, []);
  const { spec } = result?.defaulted as { spec: { strategy: Record<string, unknown>; validation: { checksum: { mode: string } }; source: { secretRef: { key: string } }; suspend: boolean } };
  t.is(spec.strategy.type, 'BigBang');
  t.is(spec.strategy.conflictPolicy, 'Fail');
  t.is(spec.validation.checksum.mode, 'Full');
  t.is(spec.source.secretRef.key, 'url');
  t.false(spec.suspend);
});

test('every CEL rule of the CRD compiles in lint\'s CEL environment (custom functions included)', (t) => {
  const rules: string[] = [];
  const walk = (node: CrdSchema): void => {
    for (const rule of node['x-kubernetes-validations'] ?? []) rules.push(rule.rule);
    for (const child of Object.values(node.properties ?? {})) walk(child);
    if (node.items) walk(node.items);
    if (typeof node.additionalProperties === 'object') walk(node.additionalProperties);
  };
  walk(crdSchemaOf(dataMigrationCrd()));
  t.true(rules.length >= 15, `${rules.length} rules`);
  t.true(rules.some((r) => r.includes('.sum()')), 'the list extension sum() is in use, and is provided');
  for (const rule of rules) t.is(compileError(rule), undefined, rule);
  t.true(rules.filter(isTransitionRule).length >= 2, 'transition rules exist and are skipped on create');
});

test('the CRD lint checks by default is the one in crds/', (t) => {
  t.deepEqual(crdSchemaOf(parse(readFileSync(crdFile, 'utf8'))), crdSchemaOf(dataMigrationCrd()));
});

test('lint reads YAML as kubectl does (1.1: yes is a boolean) and checks metadata and apiVersion', (t) => {
  t.deepEqual(lintText(minimal('  suspend: yes'))[0]?.errors, []);
  const unnamed = lintText(minimal().replace('metadata: {name: orders}', 'metadata: {labels: {a: b}}'));
  t.deepEqual(unnamed[0]?.errors, ['metadata.name: Required value: name or generateName is required']);
  const badName = lintText(minimal().replace('name: orders}', 'name: Orders_1}'));
  t.regex(badName[0]?.errors[0] ?? '', /^metadata\.name: Invalid value: "Orders_1"/);
  const version = lintText(minimal().replace('v1alpha1', 'v1'));
  t.regex(version[0]?.errors[0] ?? '', /^apiVersion: no version "dataops.dev\/v1" of DataMigration/);
});

test('lint reports every error of a document, and each DataMigration of a file separately', (t) => {
  const two = `${minimal('  strategy: {batchSize: 1, parallelism: 0}\n')}---\napiVersion: v1\nkind: Secret\nmetadata: {name: src}\n---\n${minimal().replace('name: orders}', 'name: second}')}`;
  const results = lintText(two);
  t.deepEqual(results.map((r) => r.name), ['orders', 'second']);
  t.deepEqual(results[0]?.errors, [
    'spec.strategy.batchSize: Invalid value: 1: spec.strategy.batchSize in body should be greater than or equal to 100',
    'spec.strategy.parallelism: Invalid value: 0: spec.strategy.parallelism in body should be greater than or equal to 1',
  ]);
  t.deepEqual(results[1]?.errors, []);
});

test('CEL rules with fieldPath and reason name the field as the API server does', (t) => {
  const [result] = lintText(minimal('  strategy: {type: Trickle}'));
  t.deepEqual(result?.errors, ['spec.strategy.incremental: Required value: spec.strategy.incremental is required when spec.strategy.type is Trickle']);
});

test('lint limits the name to 63 characters as the API server does, and lets generateName through (the server cuts it to fit)', (t) => {
  const named = (name: string): string[] => lintText(minimal().replace('name: orders}', `name: ${name}}`))[0]?.errors ?? [];
  t.deepEqual(named('m'.repeat(63)), []);
  t.regex(named('m'.repeat(64)).join('\n'), /a DataMigration's name may have at most 63 characters: it is the value of the dataops\.dev\/migration label/);
  t.regex(named('m'.repeat(253)).join('\n'), /at most 63 characters/);
  t.deepEqual(lintText(minimal().replace('metadata: {name: orders}', `metadata: {generateName: g${'x'.repeat(99)}}`))[0]?.errors, []);
  // A status in the manifest changes nothing: the API server drops it on a create, before the rule.
  t.regex(named(`${'m'.repeat(64)}}\nstatus: {phase: Pending, startedAt: '2026-01-01T00:00:00Z'`).join('\n'), /at most 63 characters/);
});
