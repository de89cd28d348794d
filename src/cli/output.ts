/**
 * How the CLI talks to people and scripts. stdout carries results (one JSON document with
 * --json); stderr carries logs, progress, errors and hints. Errors are printed as
 * `kluis: error: …` and `kluis: hint: …`, never as stack traces (KLUIS_DEBUG=1 adds the cause).
 */
import { KluisError, asKluisError, exitCodeFor } from '../errors.js';
import { errorLines, oneLine } from '../util/terminal.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Result lines for people on stdout (the non --json output). Each line is escaped like stderr
 * (oneLine), so a card file name with a newline or an escape sequence cannot start a line of its
 * own (a forged "secured" or "ok" line) or drive the terminal. --json keeps the exact names.
 */
export function printLines(lines: string[]): void {
  process.stdout.write(lines.map((l) => `${oneLine(l)}\n`).join(''));
}

export function info(line: string): void {
  process.stderr.write(`kluis: ${oneLine(line)}\n`);
}

export function warn(line: string): void {
  process.stderr.write(`kluis: warning: ${oneLine(line)}\n`);
}

export function printError(err: unknown): number {
  const e = asKluisError(err);
  process.stderr.write(errorLines(e));
  if (process.env.KLUIS_DEBUG && e.cause) {
    const c = e.cause as Error;
    process.stderr.write(`kluis: debug: ${c && c.stack ? c.stack : String(c)}\n`);
  }
  return exitCodeFor(e);
}

/** Runs a command action; maps any error to `kluis: error:` and the exit code from errors.ts. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      process.exitCode = typeof code === 'number' ? code : 0;
    } catch (err) {
      process.exitCode = printError(err);
    }
  };
}

export { KluisError };
