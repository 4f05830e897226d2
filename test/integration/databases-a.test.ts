// Throwaway servers answer SQL, and each test gets a database of its own. Its twin file
// (databases-b.test.ts) uses the same table names at the same time; neither sees the other's rows.
import test from 'ava';
import { checkIsolatedRoundTrip } from '../support/database-checks.ts';

test('postgres: round trip in a database of this test', (t) => checkIsolatedRoundTrip(t, 'postgres', 'a'));
test('mysql: round trip in a database of this test', (t) => checkIsolatedRoundTrip(t, 'mysql', 'a'));
