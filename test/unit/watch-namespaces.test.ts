// WATCH_NAMESPACE: comma-separated namespace names (the chart joins watchNamespaces), each once;
// empty for every namespace; anything that is not a namespace name stops the operator at start.
import test from 'ava';
import { parseWatchNamespaces } from '../../src/controller/informer-set.ts';

test('a list, blanks and repeats ignored; empty means every namespace', (t) => {
  t.deepEqual(parseWatchNamespaces(undefined), []);
  t.deepEqual(parseWatchNamespaces(''), []);
  t.deepEqual(parseWatchNamespaces('shop'), ['shop']);
  t.deepEqual(parseWatchNamespaces(' shop, billing,,shop '), ['shop', 'billing']);
});

test('names that are not namespaces are refused, each named', (t) => {
  const error = t.throws(() => parseWatchNamespaces('shop,Billing,a/b,' + 'x'.repeat(64)));
  t.regex(error.message, /not namespace names: "Billing", "a\/b", "x{64}"/);
  t.throws(() => parseWatchNamespaces('-shop'));
  t.throws(() => parseWatchNamespaces('*'));
});
