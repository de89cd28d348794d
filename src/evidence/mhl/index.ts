/**
 * ASC MHL v2 histories (the film industry's offload standard) for a folder of exported evidence.
 *
 * `writeMhlGeneration` (generation.ts) adds one generation, `ascmhl/NNNN_<folder>_<date>.mhl`,
 * and extends the chain file `ascmhl/ascmhl_chain.xml` (chain.ts) with its C4 ID. `verifyMhl`
 * (verify.ts) re-hashes the folder against the history (history.ts reads it) and checks every
 * manifest against the chain. The XML is read strictly and written through fast-xml-parser
 * (xml.ts); which files a listing takes, and that nothing follows a symlink, is folder.ts's job.
 */
export { CHAIN_FILE } from './chain.js';
export { DEFAULT_IGNORE, MHL_FOLDER } from './folder.js';
export { writeMhlGeneration, type MhlCreator, type MhlGenerationOptions, type MhlGenerationResult } from './generation.js';
export { verifyMhl, type MhlProblem, type MhlVerifyResult } from './verify.js';
