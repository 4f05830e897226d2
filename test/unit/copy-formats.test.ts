// The bulk formats the copy speaks: PostgreSQL COPY text and MySQL LOAD DATA.
import test from 'ava';
import { escapeCopyText, formatCopyTextLine, parseCopyTextLine, unescapeCopyText } from '../../src/engine/copy/pg-text.ts';
import { formatLoadDataLine, loadDataStatement } from '../../src/engine/copy/load-data.ts';

const awkward = ['plain', '', 'tab\there', 'line\nbreak', 'cr\rhere', 'back\\slash', '\\N', 'emoji 😀 ünïcödé', '\\\\n'];

test('COPY text: every value survives escape and parse, NULL stays distinct from "\\N" text', (t) => {
  const values = [...awkward, null];
  const line = formatCopyTextLine(values);
  t.true(line.endsWith('\n'));
  t.is(line.slice(0, -1).split('\n').length, 1, 'a row is one line');
  t.deepEqual(parseCopyTextLine(line.slice(0, -1)), values);
});

test('COPY text: the escapes COPY TO writes are read back', (t) => {
  t.is(unescapeCopyText('a\\bb\\fc\\vd\\te\\nf\\rg\\\\h'), 'a\bb\fc\vd\te\nf\rg\\h');
  t.is(unescapeCopyText('\\101\\x42'), 'AB');
  t.is(escapeCopyText('no specials'), 'no specials');
});

test('LOAD DATA: escapes NUL, tab, newline, CR and backslash; NULL is \\N; bytes go as hex', (t) => {
  const line = formatLoadDataLine(['a\tb', 'c\nd\r', 'nul\0', 'x\\y', null, Buffer.from([0, 255, 10])]);
  t.is(line, 'a\\tb\tc\\nd\\r\tnul\\0\tx\\\\y\t\\N\t00ff0a\n');
});

test('LOAD DATA statement: plain columns load directly, binary through UNHEX, expressions through variables', (t) => {
  const sql = loadDataStatement('`t`', [
    { quoted: '`id`', binary: false },
    { quoted: '`blob`', binary: true },
    { quoted: '`flags`', binary: false, expression: (v) => `CAST(CONV(${v}, 16, 10) AS UNSIGNED)` },
  ]);
  t.regex(sql, /^LOAD DATA LOCAL INFILE 'dataops-batch' INTO TABLE `t` CHARACTER SET utf8mb4 /);
  t.true(sql.endsWith("(`id`, @v1, @v2) SET `blob` = UNHEX(@v1), `flags` = CAST(CONV(@v2, 16, 10) AS UNSIGNED)"));
});
