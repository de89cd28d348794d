/**
 * Text for the terminal (stderr). Promises: what comes from outside (card file names, messages
 * that quote them, hints) is printed as exactly one line: C0/C1 control characters, DEL and the
 * Unicode line/paragraph separators and the bidirectional controls are shown as escapes (`\n`,
 * `\u001b`, `\u202e`), so a file name can neither start a line that looks like a `kluis: hint:`,
 * nor move the cursor, recolour the terminal or make the text after it read backwards. Used for
 * stderr and for the human (non --json) output on stdout alike. JSON output and the audit log keep
 * the exact names; this is for people only.
 */

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `s` with every control character escaped; printable text (any script) unchanged. */
export function oneLine(s: string): string {
  return s.replace(CONTROL, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The `kluis: error: …` line (about `subject`, e.g. a card file, when given) and, when the error
 * has one, the `kluis: hint: …` line, each ending in a newline.
 */
export function errorLines(e: { code: string; message: string; hint?: string | undefined }, subject?: string): string {
  const about = subject === undefined ? '' : `${oneLine(subject)}: `;
  const hint = e.hint ? `kluis: hint: ${oneLine(e.hint)}\n` : '';
  return `kluis: error: ${about}${oneLine(e.message)} [${oneLine(e.code)}]\n${hint}`;
}
