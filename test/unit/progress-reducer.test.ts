// The one reducer of pipeline events (pipeline/progress.ts): the terminal feeds it live events,
// the dashboard feeds it the journal's event rows; for the same events both see the same card.
import { describe, expect, it } from 'vitest';
import { ProgressReducer, eventFromRow } from '../../src/pipeline/progress.js';
import type { PipelineEvent } from '../../src/pipeline/events.js';
import type { EventRow } from '../../src/pipeline/journal.js';
import { EventTracker } from '../../src/dashboard/state.js';
import { plainProgress } from '../../src/cli/progress.js';

const B = 'b1';
const t0 = Date.parse('2026-12-06T10:00:00.000Z');
const events: Array<[number, PipelineEvent]> = [
  [0, { type: 'card-seen', batchId: B, card: '/media/CARD', files: 3, bytes: 3_000_000, label: 'DJI' }],
  [1000, { type: 'acquire-progress', batchId: B, path: 'DCIM/a.jpg', bytesDone: 1_000_000, bytesTotal: 3_000_000, filesDone: 1, filesTotal: 3 }],
  [2000, { type: 'acquire-progress', batchId: B, path: 'DCIM/b.mp4', bytesDone: 2_000_000, bytesTotal: 3_000_000, filesDone: 2, filesTotal: 3 }],
  [2100, { type: 'file-state', batchId: B, path: 'DCIM/a.jpg', state: 'sealed' }],
  [2200, { type: 'file-state', batchId: B, path: 'DCIM/b.mp4', state: 'held', error: { code: 'E_SANITIZE_BOX_TRUNCATED', message: 'cut short' } }],
];

function rows(list: Array<[number, PipelineEvent]>): EventRow[] {
  return list.map(([dt, e], i) => ({ id: i + 1, time: new Date(t0 + dt).toISOString(), batch_id: e.batchId, type: e.type, data: JSON.stringify(e) }));
}

describe('the progress reducer', () => {
  it('follows reading: bytes, files, the file in hand, rate and time left', () => {
    const r = new ProgressReducer();
    for (const [dt, e] of events) r.apply(e, t0 + dt);
    const c = r.cards.get(B)!;
    expect(c).toMatchObject({ card: '/media/CARD', label: 'DJI', presence: 'reading', bytesDone: 2_000_000, filesDone: 2, path: 'DCIM/b.mp4', fileStart: 1_000_000, sealed: 1, held: 1 });
    expect(r.rate(c)).toBe(1_000_000); // 1 MB per second between the two samples
    expect(r.eta(c)).toBe(1);
  });

  it('a pulled card, then the same card again: the count of unread files, then reading anew', () => {
    const r = new ProgressReducer();
    r.apply(events[0]![1], t0);
    r.apply({ type: 'card-missing', batchId: B, card: '/media/CARD', remaining: 2 }, t0 + 10);
    expect(r.cards.get(B)).toMatchObject({ presence: 'missing', missing: 2 });
    r.apply(events[0]![1], t0 + 20);
    expect(r.cards.get(B)!.presence).toBe('reading');
    expect(r.cards.get(B)!.missing).toBeUndefined();
    r.apply({ type: 'card-not-safe', batchId: B, card: '/media/CARD', files: [{ path: 'x', code: 'E_CARD_CHANGED', message: 'm' }] }, t0 + 30);
    expect(r.cards.get(B)).toMatchObject({ presence: 'not-safe', notSafe: 1 });
    r.apply({ type: 'safe-to-remove', batchId: B, card: '/media/CARD' }, t0 + 40);
    expect(r.cards.get(B)!.presence).toBe('safe');
  });

  it('reads the journal rows back into the same events, and skips rows that are not events', () => {
    const back = rows(events).map(eventFromRow);
    expect(back).toEqual(events.map(([, e]) => e));
    expect(eventFromRow({ id: 9, time: '', batch_id: B, type: 'card-seen', data: '{not json' })).toBeUndefined();
    expect(eventFromRow({ id: 9, time: '', batch_id: null, type: 'card-seen', data: '{}' })).toBeUndefined();
    expect(eventFromRow({ id: 9, time: '', batch_id: B, type: 'something-else', data: '{}' })).toBeUndefined();
  });

  it('the dashboard (from rows) and the terminal (live) tell the same progress for the same events', () => {
    const tracker = new EventTracker();
    tracker.apply(rows(events));
    expect(tracker.progress(B)).toEqual({ path: 'DCIM/b.mp4', bytesDone: 2_000_000, bytesTotal: 3_000_000, filesDone: 2, filesTotal: 3, rate: 1_000_000, eta: 1 });
    expect(tracker.cardEvent(B)).toEqual({ card: 'seen' });

    const out: string[] = [];
    let now = t0;
    const sink = plainProgress({ write: (s: string) => (out.push(s), true) }, { verbose: true }, () => now);
    for (const [dt, e] of events) {
      now = t0 + dt;
      sink(e);
    }
    // The terminal's last reading line gives the same rate and time left.
    expect(out.filter((l) => l.includes('reading')).pop()).toMatch(/reading 66%: 2\/3 files, 2\.0 MB\/3\.0 MB, 1\.0 MB\/s, 0:01 left/);
    expect(out.join('')).toMatch(/DCIM\/b\.mp4: NOT sanitized, its sealed original is kept: cut short \[E_SANITIZE_BOX_TRUNCATED\]/);
  });

  it('a pulled card shows as missing on the dashboard with the number of files still on it', () => {
    const tracker = new EventTracker();
    tracker.apply(rows([events[0]!, [5, { type: 'card-missing', batchId: B, card: '/media/CARD', remaining: 3 }]]));
    expect(tracker.cardEvent(B)).toEqual({ card: 'missing', remaining: 3 });
    expect(tracker.cardEvent('unknown')).toEqual({});
  });
});
