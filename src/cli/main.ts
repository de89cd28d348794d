/**
 * The `kluis` command: builds the commander program from one module per command and runs it.
 * Each command module exports `register(program)`; it parses, calls a stage, prints.
 */
import { Command, CommanderError } from 'commander';
import { printError, warn } from './output.js';
import { onNotice } from '../util/notices.js';
import { EXIT } from '../errors.js';
import { commandModules } from './commands.js';
import { armSeamsFromEnv } from './seams.js';

export async function main(argv: string[]): Promise<void> {
  armSeamsFromEnv();
  // Warnings from below the flow (fallbacks, steps that could not be recorded) are shown here.
  onNotice((n) => warn(n.message));
  const program = new Command();
  program
    .name('kluis')
    .description('Turns a drone memory card into sealed, verifiable evidence on storage you control.')
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError()
    .exitOverride();
  program.configureOutput({
    writeErr: (s) => process.stderr.write(s.startsWith('error:') ? `kluis: ${s}` : s),
  });
  for (const m of commandModules) m.register(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    process.exitCode = printError(err);
  }
}
