/** The list of command modules. Add a module here when you add a command. */
import type { Command } from 'commander';

export interface CommandModule {
  register(program: Command): void;
}

export const commandModules: CommandModule[] = [];

commandModules.push(await import('./audit.js'));
commandModules.push(await import('./mhl.js'));
commandModules.push(await import('./init.js'));
commandModules.push(await import('./ingest.js'));
commandModules.push(await import('./resume.js'));
commandModules.push(await import('./status.js'));
commandModules.push(await import('./export.js'));
commandModules.push(await import('./keys.js'));
commandModules.push(await import('./decrypt.js'));
commandModules.push(await import('./watch.js'));
commandModules.push(await import('./verify.js'));
commandModules.push(await import('./catalog.js'));
commandModules.push(await import('./serve.js'));
commandModules.push(await import('./config.js'));
commandModules.push(await import('./targets.js'));
commandModules.push(await import('./bench.js'));
