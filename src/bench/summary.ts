/**
 * The summary of one bench, as data and as text a reader can paste into a closing note: per card
 * the baselines (cp+sha256sum, do-it-yourself), kluis end to end and until the card is free, the
 * ratios and the CPU seconds; CPU seconds per GB for every stage; the memory figures; every goal
 * with its verdict. Pure: it only arranges figures measured in the same run.
 */
import { RATIOS, goalCpuBudgetS, ratioOf } from './goals.js';
import { cpuPerGb, cpuSeconds, findRun, type CardInfo, type Check, type MachineInfo, type RunResult } from './result.js';

/** The run ids the summary reads. */
export const CP_RUN = 'cp+sha256sum';
export const DIY_RUN = 'diy';
export const KLUIS_RUN = 'kluis-ingest-fs';
export const CARD_READ_RUN = 'stage-card-read';

export interface Timing {
  wallS: number;
  cpuS: number;
}

export interface CardSummary {
  card: string;
  description: string;
  bytes: number;
  files: number;
  /** null: not run; `failed`: run but failed (see the run's error). */
  cp: Timing | null | 'failed';
  diy: Timing | null | 'failed';
  kluis: Timing | null | 'failed';
  /** Seconds until the card was free: kluis (journal), the do-it-yourself pipeline (after its copy). */
  kluisCardFreeS: number | null;
  diyCardFreeS: number | null;
  e2eVsCp: number | null;
  e2eVsDiy: number | null;
  freeVsCp: number | null;
  freeVsDiy: number | null;
  /** CPU seconds the 0.5x cp+sha256sum goal leaves for this card on this machine's cores. */
  budgetCpuS: number | null;
  /** The card read alone, as ingest does it (stage-card-read): the floor under card free. */
  cardReadS: number | null;
  cardReadVsCp: number | null;
}

function timing(r: RunResult | undefined): Timing | null | 'failed' {
  if (!r) return null;
  if (!r.ok) return 'failed';
  return { wallS: r.wallMs / 1000, cpuS: cpuSeconds(r) };
}

function ratio(runs: RunResult[], id: string, card: string): number | null {
  const spec = RATIOS.find((s) => s.id === id);
  return spec ? ratioOf(runs, spec, card).ratio : null;
}

function seconds(ms: number | undefined, ok: boolean | undefined): number | null {
  return ok && ms !== undefined && ms > 0 ? ms / 1000 : null;
}

export function cardSummary(runs: RunResult[], card: CardInfo, cores: number): CardSummary {
  const cp = findRun(runs, CP_RUN, card.id);
  const diy = findRun(runs, DIY_RUN, card.id);
  const kluis = findRun(runs, KLUIS_RUN, card.id);
  const cardRead = findRun(runs, CARD_READ_RUN, card.id);
  const goal = RATIOS.find((s) => s.id === 'e2e-vs-cp')?.min ?? 0.5;
  return {
    card: card.id,
    description: card.description,
    bytes: card.bytes,
    files: card.files,
    cp: timing(cp),
    diy: timing(diy),
    kluis: timing(kluis),
    kluisCardFreeS: seconds(kluis?.cardFreeMs, kluis?.ok),
    diyCardFreeS: seconds(diy?.cardFreeMs, diy?.ok),
    e2eVsCp: ratio(runs, 'e2e-vs-cp', card.id),
    e2eVsDiy: ratio(runs, 'e2e-vs-diy', card.id),
    freeVsCp: ratio(runs, 'free-vs-cp', card.id),
    freeVsDiy: ratio(runs, 'free-vs-diy', card.id),
    budgetCpuS: goalCpuBudgetS(card.bytes, goal, cp, cores),
    cardReadS: seconds(cardRead?.wallMs, cardRead?.ok),
    cardReadVsCp: cp?.ok && cardRead?.ok && cardRead.wallMs > 0 ? cp.wallMs / cardRead.wallMs : null,
  };
}

/** The rows of the CPU-per-GB table: each kluis stage, then the whole runs it compares with. */
export const CPU_ROWS: Array<{ id: string; label: string }> = [
  { id: CARD_READ_RUN, label: 'card read as ingest does it (hashes, sealed original, working copy)' },
  { id: 'stage-acquire', label: 'acquire (read, SHA-256 + xxh128, spool)' },
  { id: 'stage-sanitize-image', label: 'sanitize image (with proofs)' },
  { id: 'stage-sanitize-video', label: 'sanitize video (with proofs)' },
  { id: 'stage-seal', label: 'seal' },
  { id: 'stage-deliver', label: 'deliver (fs store)' },
  { id: 'stage-verify', label: 'verify (read back + SHA-256)' },
  { id: KLUIS_RUN, label: 'kluis end to end' },
  { id: 'kluis-ingest-s3', label: 'kluis end to end → Ceph S3' },
  { id: CP_RUN, label: 'cp+sha256sum' },
  { id: DIY_RUN, label: 'do-it-yourself' },
  { id: 'rclone-crypt', label: 'rclone crypt' },
];

export interface CpuRow {
  id: string;
  label: string;
  /** Per card id: CPU s per GB of the stage's input; null where not run or failed. */
  perGb: Record<string, number | null>;
  /** Per card id: the GB the figure is per (the stage's input), null where not run. */
  gb: Record<string, number | null>;
}

/** CPU seconds per GB for every stage and whole run, per card; rows no card has are left out. */
export function cpuTable(runs: RunResult[], cards: string[]): CpuRow[] {
  const rows: CpuRow[] = [];
  for (const { id, label } of CPU_ROWS) {
    const perGb: Record<string, number | null> = {};
    const gb: Record<string, number | null> = {};
    let any = false;
    for (const card of cards) {
      const r = findRun(runs, id, card);
      any ||= r !== undefined;
      perGb[card] = r ? cpuPerGb(r) : null;
      gb[card] = r?.ok ? r.bytes / 1e9 : null;
    }
    if (any) rows.push({ id, label, perGb, gb });
  }
  return rows;
}

export interface Summary {
  cards: CardSummary[];
  cpuPerGb: CpuRow[];
  /** Every goal of issue 14 with its verdict (ratios per card, then memory). */
  goals: Check[];
}

const fx = (n: number, d: number): string => (Number.isFinite(n) ? n.toFixed(d) : '-');

function cell(t: Timing | null | 'failed'): string {
  return t === null ? '-' : t === 'failed' ? 'failed' : `${fx(t.wallS, 1)} s`;
}

function cpuCell(t: Timing | null | 'failed'): string {
  return t === null ? '-' : t === 'failed' ? 'failed' : fx(t.cpuS, 1);
}

function x(r: number | null, goal?: number): string {
  if (r === null) return '-';
  const text = `${fx(r, 2)}x`;
  return goal !== undefined && r < goal ? `**${text}**` : text;
}

function secs(n: number | null): string {
  return n === null ? '-' : `${fx(n, 1)} s`;
}

function mdTable(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

function verdict(pass: boolean | null): string {
  return pass === null ? 'NOT MEASURED' : pass ? 'PASS' : 'FAIL';
}

export interface SummaryContext {
  date: string;
  command: string;
  machine: MachineInfo;
  versions: Record<string, string>;
  scale: number;
  loadAverage: number | null;
}

/**
 * The summary as Markdown: a line saying where and how, the card table (a ratio below its goal is
 * bold), the CPU-per-GB table, the memory figures and every goal with PASS/FAIL.
 */
export function formatSummary(s: Summary, ctx: SummaryContext): string {
  const out: string[] = [];
  const goalOf = (id: string): number | undefined => RATIOS.find((r) => r.id === id)?.min;
  out.push('## Summary (issue 14)');
  out.push('');
  const load = ctx.loadAverage === null ? '' : `, load average ${fx(ctx.loadAverage, 2)} at the start`;
  out.push(
    `One run of \`${ctx.command}\` on ${ctx.date.slice(0, 10)}, kluis ${ctx.versions.kluis ?? '?'}, ` +
      `${ctx.machine.cores} cores (${ctx.machine.cpuModel})${load}. All ratios are within this run.`,
  );
  if (ctx.scale !== 1) out.push(`Cards at scale ${ctx.scale}: these are not the card sizes of issue 14.`);
  out.push('');
  if (s.cards.length > 0) {
    out.push(
      ...mdTable(
        ['card', 'cp+sha256sum', 'DIY', 'kluis', 'kluis / cp+sha256sum', 'kluis / DIY', 'card free', 'card free / cp+sha256sum', 'card free / DIY', 'CPU s cp / DIY / kluis'],
        s.cards.map((c) => [
          `${c.card}: ${c.description} (${fx(c.bytes / 1e9, 2)} GB, ${c.files} files)`,
          cell(c.cp),
          cell(c.diy),
          cell(c.kluis),
          x(c.e2eVsCp, goalOf('e2e-vs-cp')),
          x(c.e2eVsDiy, goalOf('e2e-vs-diy')),
          secs(c.kluisCardFreeS),
          x(c.freeVsCp, goalOf('free-vs-cp')),
          x(c.freeVsDiy),
          `${cpuCell(c.cp)} / ${cpuCell(c.diy)} / ${cpuCell(c.kluis)}`,
        ]),
      ),
    );
    out.push('');
    out.push(
      'DIY: `cp -r` the card, `exiftool -all= -overwrite_original -r` on the copy, `rclone copy` to a crypt remote; ' +
        'its card is free after the copy' +
        (s.cards.some((c) => c.diyCardFreeS !== null) ? ` (${s.cards.map((c) => `${c.card} ${secs(c.diyCardFreeS)}`).join(', ')})` : '') +
        '. kluis end to end: secured, read back and verified; card free: safe to remove (journal).',
    );
    const budgets = s.cards.filter((c) => c.budgetCpuS !== null);
    if (budgets.length > 0) {
      out.push(
        `The ${goalOf('e2e-vs-cp') ?? 0.5}x cp+sha256sum goal leaves kluis ${budgets.map((c) => `${fx(c.budgetCpuS!, 1)} CPU s for ${c.card}`).join(', ')} on ${ctx.machine.cores} cores.`,
      );
    }
    const floors = s.cards.filter((c) => c.cardReadS !== null);
    if (floors.length > 0) {
      out.push(
        `The card read alone, as ingest does it (no sanitizing, journal or audit), the floor under card free: ` +
          `${floors.map((c) => `${c.card} ${secs(c.cardReadS)} (${x(c.cardReadVsCp)} cp+sha256sum)`).join(', ')}.`,
      );
    }
    out.push('');
  }
  if (s.cpuPerGb.length > 0) {
    const cards = s.cards.map((c) => c.card);
    out.push(
      ...mdTable(
        ['CPU s per GB', ...cards],
        s.cpuPerGb.map((r) => [r.label, ...cards.map((c) => (r.perGb[c] === null || r.perGb[c] === undefined ? '-' : fx(r.perGb[c]!, 1)))]),
      ),
    );
    out.push('');
    out.push('Per GB of the stage\'s own input (seal, deliver and verify: of the sanitized or sealed bytes); stages measured one at a time, alone.');
    out.push('');
  }
  if (s.goals.length > 0) {
    out.push(...mdTable(['goal', 'measured', 'verdict'], s.goals.map((g) => [g.label, g.value, verdict(g.pass)])));
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
