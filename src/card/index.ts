/**
 * Public surface of the card stage: notice a card (`CardWatcher`), list and classify every file on
 * it by its first bytes (`inventory`), recognise it again (`cardIdentity`), read each file once
 * (`readCardFile`), and map card paths back to the exact file names (`cardFsPath`). Other folders
 * import exactly these; the rest of src/card is internal (the dependency check,
 * .dependency-cruiser.cjs, holds other folders to this file). Nothing here ever writes to a card.
 */
export { CardWatcher, defaultSettleMs, type CardWatcherOptions } from './watch.js';
export { inventory, type CardEntry, type FileClass } from './inventory.js';
export { cardIdentity, mountOf, type CardIdentity } from './identity.js';
export {
  readCardFile, acquireFile, hashFile, READ_CHUNK,
  type AcquireResult, type CardReadResult, type CardReadOptions,
} from './acquire.js';
export { cardFsPath, cardName, cardNameBytes } from './names.js';
