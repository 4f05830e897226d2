// Shared body of the database platform tests (databases-a/b.test.ts run it in parallel).
import type { ExecutionContext } from 'ava';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { freshDatabase, type Engine } from './databases.ts';

/**
 * Creates the same table in a fresh database, writes rows tagged with `tag` (including 4-byte
 * unicode), holds the table open across other tests' work, and checks it reads back only its own.
 */
export async function checkIsolatedRoundTrip(t: ExecutionContext, engine: Engine, tag: string): Promise<void> {
  const url = await freshDatabase(t, engine);
  const rows = Array.from({ length: 50 }, (_, i) => [i, `${tag}-${i}-😀`] as const);
  let read: { id: number; label: string }[];
  if (engine === 'postgres') {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('CREATE TABLE shared (id integer PRIMARY KEY, label text NOT NULL)');
      for (const [id, label] of rows) await client.query('INSERT INTO shared VALUES ($1, $2)', [id, label]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      read = (await client.query<{ id: number; label: string }>('SELECT id, label FROM shared ORDER BY id')).rows;
      const { rows: [info] } = await client.query<{ db: string }>('SELECT current_database() AS db');
      t.regex(info?.db ?? '', /^t_/);
    } finally {
      await client.end();
    }
  } else {
    const connection = await mysql.createConnection({ uri: url, charset: 'utf8mb4' });
    try {
      await connection.query('CREATE TABLE shared (id int PRIMARY KEY, label varchar(100) CHARACTER SET utf8mb4 NOT NULL)');
      for (const [id, label] of rows) await connection.execute('INSERT INTO shared VALUES (?, ?)', [id, label]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const [result] = await connection.query('SELECT id, label FROM shared ORDER BY id');
      read = result as { id: number; label: string }[];
    } finally {
      await connection.end();
    }
  }
  t.deepEqual(read.map((r) => [r.id, r.label]), rows.map(([id, label]) => [id, label]));
}
