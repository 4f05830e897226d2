// The runner's summary parsing and the node stand-in's variable expansion: pure functions the
// whole test platform leans on.
import test from 'ava';
import { parseAvaSummary } from '../support/ava-summary.ts';
import { expandVariables } from '../support/node-standin.ts';

test('ava summary: passes and failures are summed over its closing lines', (t) => {
  const output = '  ✔ a\n  ✘ b\n  ─\n\n  1 test failed\n  3 tests passed\n  2 known failures\n  1 uncaught exception\n';
  t.deepEqual(parseAvaSummary(output, 1), { passed: 3, failed: 2, skipped: 2 });
});

test('ava summary: passes are counted per test when failures hide the total', (t) => {
  const output = '  ✔ a\n  ✔ b (12ms)\n  ✘ [fail]: c\n  ✔ [expected fail] d\n  ─\n\n  1 test failed\n  1 known failure\n';
  t.deepEqual(parseAvaSummary(output, 1), { passed: 2, failed: 1, skipped: 1 });
});

test('ava summary: a non-zero exit with nothing counted is one failure', (t) => {
  t.deepEqual(parseAvaSummary('  ✘ Couldn’t find any files to test\n', 1), { passed: 0, failed: 1, skipped: 0 });
  t.deepEqual(parseAvaSummary('  1 test passed\n', 0), { passed: 1, failed: 0, skipped: 0 });
});

test('ava summary: skipped and todo tests are reported, not passed', (t) => {
  t.deepEqual(parseAvaSummary('  2 tests passed\n  1 test skipped\n  1 test todo\n', 0), { passed: 2, failed: 0, skipped: 2 });
});

test('stand-in expands $(VAR) like a kubelet, keeps unknown ones and unescapes $$', (t) => {
  const env = { DB: 'orders', PORT: '5432' };
  t.is(expandVariables('--db=$(DB):$(PORT)', env), '--db=orders:5432');
  t.is(expandVariables('$(MISSING) stays', env), '$(MISSING) stays');
  t.is(expandVariables('cost: $$(DB)', env), 'cost: $(DB)');
});
