/**
 * `kluis bench [--size 2G] [--card-scale 1] [--cards photo,video] [--out bench/results] [--keep]
 * [--only …] [--memory] [--json]`: the benchmark of issue 14 (src/bench/). Prints the detail
 * table and the summary (or, with --json, the one JSON document) on stdout, progress on stderr,
 * and writes the JSON to `<out>/<date>-<host>.json`.
 * Exit 0 when every run it attempted worked, whatever the speed: speed goals are reported as
 * PASS/FAIL in the output, they are not an error of the command.
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import { action, info, printJson } from './output.js';
import { EXIT } from '../errors.js';
import { parseSize } from '../bench/card.js';
import { REPO_ROOT, runBench } from '../bench/index.js';
import { CARD_KINDS, SELECTORS, parseCards, parseScale, selector } from '../bench/select.js';
import { formatTable, writeResultFile } from '../bench/report.js';

interface BenchCliOptions {
  size: string;
  cardScale: string;
  cards: string;
  out: string;
  save: boolean;
  keep?: boolean;
  only?: string;
  memory?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('measure kluis against cp+sha256sum, a do-it-yourself pipeline, rclone crypt and age on two synthetic cards')
    .option('--size <size>', 'size of the photo-heavy card (e.g. 2G, 500M)', '2G')
    .option('--card-scale <factor>', 'scale every card and memory video (0.1 = a tenth, to try the bench out)', '1')
    .option('--cards <cards>', `which cards: ${Object.keys(CARD_KINDS).join(', ')}`, Object.keys(CARD_KINDS).join(','))
    .option('--out <dir>', 'folder for the JSON result', path.join(REPO_ROOT, 'bench', 'results'))
    .option('--no-save', 'do not write a JSON result file')
    .option('--keep', 'keep the scratch data of every run (for inspection)')
    .option('--only <runs>', `comma-separated subset: ${Object.keys(SELECTORS).join(', ')}`)
    .option('--memory', 'only the memory runs: peak RSS while ingesting one 1 GB and one 4 GB video')
    .option('--json', 'print one JSON document on stdout')
    .action(
      action(async (opts: BenchCliOptions) => {
        const only = opts.only ? opts.only.split(',').map((s) => s.trim()).filter(Boolean) : null;
        selector(only); // reject unknown names before any work
        const size = parseSize(opts.size);
        const scale = parseScale(opts.cardScale);
        const cards = parseCards(opts.cards);
        const doc = await runBench({
          size,
          scale,
          cards,
          keep: Boolean(opts.keep),
          only,
          memory: Boolean(opts.memory),
          command: `kluis ${process.argv.slice(2).join(' ')}`,
          log: (line) => info(line),
        });
        if (opts.save) {
          const file = await writeResultFile(path.resolve(opts.out), doc);
          info(`result written to ${file}`);
        }
        if (opts.json) printJson(doc);
        else process.stdout.write(formatTable(doc));
        return doc.runs.every((r) => r.ok) ? EXIT.ok : EXIT.failure;
      }),
    );
}
