/**
 * the batch's final status and its audit line. The journal called a batch "secured"
 * first and appended the `batch-secured` audit line afterwards without waiting for it: when that
 * append failed (a full disk, a lock held too long) the failure became an unhandled rejection
 * (a stack trace, the process killed) or went unnoticed, and the journal already said secured, so
 * no later run ever wrote the line. The audit log then lacks the one line that says the card's
 * footage is safe. Now the audit line comes first and its failure reaches the caller; the journal
 * records the status only after it, so the next run records both.
 *
 * The audit log's append is made to fail for that one line (as a full disk would); everything
 * else is the real pipeline with real ffmpeg/ExifTool and the fs target.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeStation, auditEntries } from '../helpers/kluis.js';
import { makeCard } from '../helpers/card.js';
import { openStation } from '../../src/pipeline/station.js';
import { ingestCard } from '../../src/pipeline/ingest.js';
import { KluisError } from '../../src/errors.js';

describe('batch status and its audit line', () => {
  it('a failed batch-secured audit line fails the run and leaves the status to be recorded next time', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'kluis-status-audit-'));
    const st = makeStation(path.join(work, 'station'));
    const card = makeCard(path.join(work, 'card'), [{ kind: 'jpeg', name: 'DJI_0001.JPG' }]);

    const station = await openStation(st.config);
    try {
      const audit = station.audit;
      const realAppend = audit.append.bind(audit);
      audit.append = ((type, data) =>
        type === 'batch-secured'
          ? Promise.reject(new KluisError('E_AUDIT_WRITE', 'cannot write the audit log: no space left on device'))
          : realAppend(type, data)) as typeof audit.append;

      const first = await ingestCard(station, { card, deliveryWaitMs: 10_000 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(first).toMatchObject({ code: 'E_AUDIT_WRITE' });
      const batch = station.journal.batches()[0]!;
      expect(batch.status).not.toBe('secured');

      audit.append = realAppend;
      const again = await ingestCard(station, { card, deliveryWaitMs: 10_000 });
      expect(again.status).toBe('secured');
      expect(again.batchId).toBe(batch.id);
      expect(station.journal.batch(batch.id)!.status).toBe('secured');
    } finally {
      await station.close();
    }
    expect(auditEntries(st, 'batch-secured').filter((e) => e.batchId !== undefined)).toHaveLength(1);
  });
});
