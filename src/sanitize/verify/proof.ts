/**
 * Turns independent-check findings into the fail-closed verdict. Promises: any finding by any
 * reader is E_SANITIZE_RESIDUE naming what and where; unequal essence is E_SANITIZE_ESSENCE.
 */
import { KluisError } from '../../errors.js';
import { essenceLabel } from '../essence-method.js';
import type { EssenceProof, IndependentCheck } from '../types.js';

export function assertClean(checks: IndependentCheck[]): void {
  const found = checks.flatMap((c) => c.found.map((f) => `${c.tool}: ${f}`));
  if (found.length) {
    throw new KluisError('E_SANITIZE_RESIDUE', `sanitized output still carries metadata: ${found.slice(0, 5).join('; ')}${found.length > 5 ? ` (+${found.length - 5} more)` : ''}`, {
      hint: 'the file is withheld; report it with the file so the allow-list can be checked',
      details: { found },
    });
  }
}

export function assertEssence(proofs: EssenceProof[]): void {
  for (const p of proofs) {
    if (p.before !== p.after) {
      throw new KluisError('E_SANITIZE_ESSENCE', `picture changed while sanitizing (${essenceLabel(p)}: ${p.before.slice(0, 12)} ≠ ${p.after.slice(0, 12)})`, {
        hint: 'the file is withheld; this is a bug in kluis, please report it with the file',
        details: { proof: p },
      });
    }
  }
}
