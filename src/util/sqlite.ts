/**
 * A thin, typed front for Node's built-in SQLite (`node:sqlite`, synchronous API): open, prepare,
 * exec, a `pragma` reader, and `transaction(fn)`, which runs fn inside BEGIN IMMEDIATE … COMMIT
 * (a SAVEPOINT when nested) and rolls back when fn throws. It never retries and never swallows an
 * error; booleans bound as parameters become 1/0 (node:sqlite refuses them), nothing else is
 * coerced. docs/adr/0004 says why node:sqlite and not a native addon.
 */
import { existsSync } from 'node:fs';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';

type Param = SQLInputValue | boolean;
export type Params = Param[] | [object];

export interface RunResult {
  changes: number;
  lastInsertRowid: number;
}

export interface Statement {
  run(...params: Params): RunResult;
  get(...params: Params): unknown;
  all(...params: Params): unknown[];
}

export interface OpenOptions {
  readOnly?: boolean;
  /** Fail when the file does not exist (instead of creating it). */
  mustExist?: boolean;
}

function bindValue(v: Param): SQLInputValue {
  return typeof v === 'boolean' ? (v ? 1 : 0) : v;
}

function bind(params: Params): SQLInputValue[] | [Record<string, SQLInputValue>] {
  const first = params[0];
  if (params.length === 1 && first !== null && typeof first === 'object' && !ArrayBuffer.isView(first)) {
    const out: Record<string, SQLInputValue> = {};
    for (const [k, v] of Object.entries(first as Record<string, Param>)) out[k] = bindValue(v);
    return [out];
  }
  return (params as Param[]).map(bindValue);
}

class Stmt implements Statement {
  constructor(private readonly s: StatementSync) {}

  run(...params: Params): RunResult {
    const r = this.s.run(...(bind(params) as SQLInputValue[]));
    return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
  }

  get(...params: Params): unknown {
    return this.s.get(...(bind(params) as SQLInputValue[]));
  }

  all(...params: Params): unknown[] {
    return this.s.all(...(bind(params) as SQLInputValue[]));
  }
}

export class Sqlite {
  readonly raw: DatabaseSync;
  private readonly cache = new Map<string, Stmt>();
  private depth = 0;

  constructor(file: string, opts: OpenOptions = {}) {
    if (opts.mustExist || opts.readOnly) {
      // Say plainly that the file is missing rather than let SQLite create or half-open it.
      if (file !== ':memory:' && !existsSync(file)) {
        throw Object.assign(new Error(`unable to open database file: ${file} does not exist`), { code: 'ENOENT' });
      }
    }
    this.raw = new DatabaseSync(file, { readOnly: opts.readOnly ?? false, enableForeignKeyConstraints: true });
  }

  /** A prepared statement, cached per SQL text for the life of the connection. */
  prepare(sql: string): Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = new Stmt(this.raw.prepare(sql));
      this.cache.set(sql, s);
    }
    return s;
  }

  exec(sql: string): void {
    this.raw.exec(sql);
  }

  /** `pragma('journal_mode = WAL')` sets; `pragma('journal_mode')` reads the first column of the first row. */
  pragma(sql: string): unknown {
    const row = this.raw.prepare(`PRAGMA ${sql}`).get() as Record<string, unknown> | undefined;
    return row ? Object.values(row)[0] : undefined;
  }

  /** Wraps fn in a transaction; calling the result runs it. Nested calls use savepoints. */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      const outer = this.depth === 0;
      const sp = `kluis_sp_${this.depth}`;
      this.raw.exec(outer ? 'BEGIN IMMEDIATE' : `SAVEPOINT ${sp}`);
      this.depth += 1;
      try {
        const r = fn(...args);
        this.depth -= 1;
        this.raw.exec(outer ? 'COMMIT' : `RELEASE ${sp}`);
        return r;
      } catch (e) {
        this.depth -= 1;
        if (outer) {
          if (this.raw.isTransaction) this.raw.exec('ROLLBACK');
        } else {
          this.raw.exec(`ROLLBACK TO ${sp}`);
          this.raw.exec(`RELEASE ${sp}`);
        }
        throw e;
      }
    };
  }

  get open(): boolean {
    return this.raw.isOpen;
  }

  close(): void {
    this.cache.clear();
    if (this.raw.isOpen) this.raw.close();
  }
}
