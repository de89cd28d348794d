/**
 * Terminal progress for ingest, resume and watch: plain line logs on stderr (one line per
 * meaningful event), silenced by --quiet; --verbose adds per-file states. Never writes stdout.
 */
import type { PipelineEvent } from '../pipeline/events.js';

export interface ProgressOptions {
  quiet?: boolean;
  verbose?: boolean;
}

export function lineProgress(opts: ProgressOptions = {}): (e: PipelineEvent) => void {
  const say = (s: string): void => {
    if (!opts.quiet) process.stderr.write(`kluis: ${s}\n`);
  };
  return (e) => {
    switch (e.type) {
      case 'card-seen':
        say(`card ${e.card}: ${e.files} files, ${(e.bytes / 1e6).toFixed(1)} MB (batch ${e.batchId})`);
        break;
      case 'safe-to-remove':
        say(`SAFE TO REMOVE the card ${e.card}: every file is read and hashed`);
        break;
      case 'card-missing':
        say(`card ${e.card} is gone with ${e.remaining} file(s) unread; insert it again to finish`);
        break;
      case 'file-state':
        if (opts.verbose || e.state === 'failed') say(`${e.path}: ${e.state}${e.error ? ` (${e.error.code})` : ''}`);
        break;
      case 'delivery':
        if (opts.verbose || e.state === 'refused' || e.state === 'failed') say(`${e.object} → ${e.target}: ${e.state}${e.error ? ` (${e.error.code}: ${e.error.message})` : ''}`);
        break;
      case 'batch-status':
        say(`batch ${e.batchId}: ${e.status}`);
        break;
      case 'acquire-progress':
        if (opts.verbose) say(`reading ${e.filesDone}/${e.filesTotal} files, ${(e.bytesDone / 1e6).toFixed(1)}/${(e.bytesTotal / 1e6).toFixed(1)} MB`);
        break;
      default:
        break;
    }
  };
}
