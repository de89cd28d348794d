/**
 * Where a station keeps things: every path is fixed relative to the folder of its config file
 * (keys/, spool/, state/ with the audit log and the journal). Pure path arithmetic: it never reads
 * or creates anything.
 */
import * as path from 'node:path';

/** Where a station keeps things, all relative to the folder of its config file. */
export interface StationLayout {
  configFile: string;
  root: string;
  keysDir: string;
  stationKeyFile: string;
  adminPinFile: string;
  spoolDir: string;
  stateDir: string;
  auditFile: string;
  journalFile: string;
}

export function layoutFor(configFile: string): StationLayout {
  const abs = path.resolve(configFile);
  const root = path.dirname(abs);
  const keysDir = path.join(root, 'keys');
  const stateDir = path.join(root, 'state');
  return {
    configFile: abs,
    root,
    keysDir,
    stationKeyFile: path.join(keysDir, 'station.key'),
    adminPinFile: path.join(keysDir, 'admin.pub'),
    spoolDir: path.join(root, 'spool'),
    stateDir,
    auditFile: path.join(stateDir, 'audit.jsonl'),
    journalFile: path.join(stateDir, 'journal.db'),
  };
}
