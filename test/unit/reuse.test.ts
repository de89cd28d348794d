import { describe, expect, test } from 'vitest';
import { give, keptBytes, take } from '../../src/util/reuse.js';

describe('reused buffers (util/reuse.ts)', () => {
  test('take gives exactly the bytes asked for; a buffer given back is handed out again', () => {
    const a = take(3_000_000);
    expect(a.length).toBe(3_000_000);
    a[0] = 42;
    give(a);
    const b = take(2_500_000);
    expect(b.length).toBe(2_500_000);
    expect(b.buffer).toBe(a.buffer); // the same memory, not a new allocation
    expect(b[0]).toBe(42); // not zero-filled
    give(b);
  });

  test('two holders never share a buffer', () => {
    const a = take(1 << 20);
    const b = take(1 << 20);
    expect(a.buffer).not.toBe(b.buffer);
    give(a);
    give(b);
  });

  test('a buffer given twice, or one that did not come from take, is ignored', () => {
    const a = take(1000);
    give(a);
    give(a);
    const x = take(1000);
    const y = take(1000);
    expect(x.buffer).not.toBe(y.buffer);
    give(Buffer.alloc(10));
    give(new Uint8Array(10));
    give(x);
    give(y);
  });

  test('what is kept for reuse stays bounded, however much is given back', () => {
    const many = Array.from({ length: 20 }, () => take(20 << 20));
    for (const b of many) give(b);
    expect(keptBytes()).toBeLessThanOrEqual(48 << 20);
    const huge = take(100 << 20);
    give(huge);
    expect(keptBytes()).toBeLessThanOrEqual(48 << 20);
  });
});
