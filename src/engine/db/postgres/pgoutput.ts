// A decoder of PostgreSQL's pgoutput logical replication messages (protocol versions 1 and 2,
// without streamed in-progress transactions, which the stream never asks for), keeping every value
// as the server's own text: pg-logical-replication's own decoder turns values into JS values
// through pg's process-wide type parsers (timestamps become Dates and lose their microseconds).
// Format: https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
// Never throws: the stream calls it inside the driver's socket handler, where an exception would
// end the process; a message it cannot read comes back as { tag: 'error' }.

/** A WAL position (log sequence number) as a 64-bit number. */
export type Lsn = bigint;

/** 'XXX/XXXXXXXX', as the server prints an LSN. */
export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match?.[1] || !match[2]) throw new Error(`not an LSN: ${text.slice(0, 40)}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** PostgreSQL timestamps on the wire: microseconds since 2000-01-01 00:00 UTC. */
const POSTGRES_EPOCH_MS = 946_684_800_000;
const toDate = (micros: bigint): Date => new Date(POSTGRES_EPOCH_MS + Number(micros / 1000n));

/** One column of a tuple: its text, NULL, or 'unchanged' (a TOASTed value an UPDATE did not change, not sent). */
export type TupleValue = string | null | { unchanged: true };

export interface RelationColumn {
  name: string;
  /** Part of the replica identity (the key sent with deletes and key updates). */
  key: boolean;
  typeOid: number;
}

export interface Relation {
  oid: number;
  schema: string;
  name: string;
  /** d: default (primary key), n: nothing, f: full (the whole old row), i: a unique index. */
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  columns: RelationColumn[];
}

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: Lsn; commitTime: Date; xid: number }
  | { tag: 'commit'; commitLsn: Lsn; endLsn: Lsn; commitTime: Date }
  | { tag: 'relation'; relation: Relation }
  | { tag: 'insert'; relation: Relation; row: TupleValue[] }
  /** `old`: the replica identity's columns ('K', others null) or the whole old row ('O'); absent when the key did not change. */
  | { tag: 'update'; relation: Relation; old?: TupleValue[]; oldKind?: 'key' | 'full'; row: TupleValue[] }
  | { tag: 'delete'; relation: Relation; old: TupleValue[]; oldKind: 'key' | 'full' }
  | { tag: 'truncate'; relations: Relation[]; cascade: boolean; restartIdentity: boolean }
  /** Messages the capture has no use for (origin, type, logical messages). */
  | { tag: 'ignored'; kind: string }
  | { tag: 'error'; message: string };

class Reader {
  private offset = 0;
  private readonly buffer: Buffer;
  constructor(buffer: Buffer) {
    this.buffer = buffer;
  }
  private need(bytes: number): void {
    if (this.offset + bytes > this.buffer.length) throw new RangeError(`message ends early (needs ${bytes} bytes at ${this.offset} of ${this.buffer.length})`);
  }
  uint8(): number {
    this.need(1);
    return this.buffer.readUInt8(this.offset++);
  }
  int16(): number {
    this.need(2);
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }
  int32(): number {
    this.need(4);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint32(): number {
    return this.int32() >>> 0;
  }
  int64(): bigint {
    this.need(8);
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }
  uint64(): bigint {
    return BigInt.asUintN(64, this.int64());
  }
  /** A NUL-terminated string; a copy (the driver reuses its receive buffer). */
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw new RangeError('string without its terminating NUL');
    const value = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }
  text(length: number): string {
    this.need(length);
    const value = this.buffer.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
}

const IDENTITIES = new Set(['d', 'n', 'f', 'i']);

/** Decodes one pgoutput message (the XLogData payload); remembers relations for the changes that follow. */
export class PgoutputDecoder {
  private readonly relations = new Map<number, Relation>();

  decode(payload: Buffer): PgoutputMessage {
    try {
      return this.read(new Reader(payload));
    } catch (error) {
      return { tag: 'error', message: `pgoutput message ${String.fromCharCode(payload[0] ?? 0)}: ${(error as Error).message}` };
    }
  }

  private relation(reader: Reader): Relation {
    const oid = reader.uint32();
    const relation = this.relations.get(oid);
    // The server sends a Relation message before the first change of a table on each connection.
    if (!relation) throw new Error(`change of relation ${oid} before its Relation message`);
    return relation;
  }

  private read(reader: Reader): PgoutputMessage {
    const tag = String.fromCharCode(reader.uint8());
    switch (tag) {
      case 'B':
        return { tag: 'begin', finalLsn: reader.uint64(), commitTime: toDate(reader.int64()), xid: reader.uint32() };
      case 'C': {
        reader.uint8(); // flags, unused
        return { tag: 'commit', commitLsn: reader.uint64(), endLsn: reader.uint64(), commitTime: toDate(reader.int64()) };
      }
      case 'R': {
        const oid = reader.uint32();
        const schema = reader.cstring();
        const name = reader.cstring();
        const identity = String.fromCharCode(reader.uint8());
        if (!IDENTITIES.has(identity)) throw new Error(`unknown replica identity ${identity}`);
        const count = reader.int16();
        const columns: RelationColumn[] = [];
        for (let i = 0; i < count; i++) {
          const flags = reader.uint8();
          const column = reader.cstring();
          const typeOid = reader.uint32();
          reader.int32(); // type modifier
          columns.push({ name: column, key: (flags & 1) === 1, typeOid });
        }
        const relation: Relation = { oid, schema, name, replicaIdentity: identity as Relation['replicaIdentity'], columns };
        this.relations.set(oid, relation);
        return { tag: 'relation', relation };
      }
      case 'I': {
        const relation = this.relation(reader);
        expectByte(reader, 'N');
        return { tag: 'insert', relation, row: readTuple(reader) };
      }
      case 'U': {
        const relation = this.relation(reader);
        const kind = String.fromCharCode(reader.uint8());
        if (kind === 'N') return { tag: 'update', relation, row: readTuple(reader) };
        if (kind !== 'K' && kind !== 'O') throw new Error(`unknown update part ${kind}`);
        const old = readTuple(reader);
        expectByte(reader, 'N');
        return { tag: 'update', relation, old, oldKind: kind === 'K' ? 'key' : 'full', row: readTuple(reader) };
      }
      case 'D': {
        const relation = this.relation(reader);
        const kind = String.fromCharCode(reader.uint8());
        if (kind !== 'K' && kind !== 'O') throw new Error(`unknown delete part ${kind}`);
        return { tag: 'delete', relation, old: readTuple(reader), oldKind: kind === 'K' ? 'key' : 'full' };
      }
      case 'T': {
        const count = reader.int32();
        const options = reader.uint8();
        const relations: Relation[] = [];
        for (let i = 0; i < count; i++) relations.push(this.relation(reader));
        return { tag: 'truncate', relations, cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2 };
      }
      case 'O': case 'Y': case 'M':
        return { tag: 'ignored', kind: tag };
      default:
        // Stream Start/Stop/Commit/Abort (S, E, c, A) and two-phase messages are never asked for.
        throw new Error(`unexpected message type ${JSON.stringify(tag)}`);
    }
  }
}

function expectByte(reader: Reader, expected: string): void {
  const got = String.fromCharCode(reader.uint8());
  if (got !== expected) throw new Error(`expected ${expected}, got ${JSON.stringify(got)}`);
}

function readTuple(reader: Reader): TupleValue[] {
  const count = reader.int16();
  const values: TupleValue[] = [];
  for (let i = 0; i < count; i++) {
    const kind = String.fromCharCode(reader.uint8());
    if (kind === 'n') values.push(null);
    else if (kind === 'u') values.push({ unchanged: true });
    else if (kind === 't') values.push(reader.text(reader.int32()));
    // Binary values come only when asked for (option binary), which the stream does not.
    else if (kind === 'b') throw new Error('binary tuple value, never requested');
    else throw new Error(`unknown tuple value kind ${JSON.stringify(kind)}`);
  }
  return values;
}
