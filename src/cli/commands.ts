/** The list of command modules. Add a module here when you add a command. */
import type { Command } from 'commander';

export interface CommandModule {
  register(program: Command): void;
}

export const commandModules: CommandModule[] = [];

commandModules.push(await import('./audit.js'));
commandModules.push(await import('./mhl.js'));
