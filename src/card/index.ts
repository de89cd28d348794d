/**
 * What other folders use of the card stage. Other folders import through this file (the
 * dependency check, .dependency-cruiser.cjs, holds them to it; the imports listed as KNOWN there
 * still reach card modules directly and move here as they are reworked).
 */
export { cardFsPath } from './names.js';
