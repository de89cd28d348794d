/**
 * The catalogue of every error code kluis raises: its exit code and what it means, in one line.
 * Promises: a code is stable once listed (machine-readable, never reworded); `KluisError` takes
 * only a listed code, so a typo fails to compile; the exit code of `kluis` is read from here and
 * nowhere else (errors.ts `exitCodeFor`). Data only: no logic beyond the lookup types.
 *
 * To add a code: add one line in its group, with the exit code a script should see for it.
 * Codes are grouped by prefix (E_CARD…, E_TARGET…); callers may test a prefix (`E_EGRESS`,
 * `E_KEY`, `E_MANIFEST`) for a whole group, so keep a code in the group its name says.
 */

/** Exit codes of the `kluis` command. 0 is success; the rest say which kind of trouble. */
export const EXIT = {
  ok: 0,
  failure: 1, // a batch failed or an unexpected error
  usage: 2, // bad arguments
  partial: 3, // some files secured, some not
  mismatch: 4, // verify: a hash or signature does not match
  missing: 5, // verify: an object or file is missing
  couldNotCheck: 6, // verify: a target or key could not be reached or used
  config: 7, // config missing, invalid, unsigned or wrongly signed
  policy: 8, // a target or action refused by policy
  key: 9, // key missing, unreadable, wrong permissions, wrong recipient
  input: 10, // bad input file or card
  storage: 11, // local disk full or unwritable
  internal: 70,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

interface Entry {
  readonly exit: ExitCode;
  readonly meaning: string;
}

const { failure, usage, mismatch, missing, couldNotCheck, config, policy, key, input, storage, internal } = EXIT;

export const ERROR_CODES = {
  // General
  E_USAGE: { exit: usage, meaning: 'a command was given arguments it cannot use' },
  E_INTERNAL: { exit: internal, meaning: 'an unexpected failure inside kluis (a bug): the work it was doing is withheld' },
  E_DISK_FULL: { exit: storage, meaning: 'the station disk is full; queued work resumes once space is freed' },
  E_SPOOL: { exit: storage, meaning: 'the spool folder cannot be written' },
  E_SPOOL_COPY_LOST: { exit: storage, meaning: 'the working copy of an acquired file is gone or changed (a power cut before sanitizing); its sealed original is kept' },
  E_OUTPUT_EXISTS: { exit: usage, meaning: 'the output file already exists and is never overwritten' },
  E_EXPORT_OUT: { exit: usage, meaning: 'the export folder cannot be made or opened' },
  E_EXPORT_OUT_NOT_DIR: { exit: usage, meaning: 'the export folder named is not a folder' },
  E_EXPORT_OUT_NOT_EMPTY: { exit: usage, meaning: 'the export folder is not empty (and --into-existing was not given)' },
  E_EXPORT_LINK: { exit: input, meaning: 'a link or non-regular entry inside the export folder; export never follows or replaces one' },
  E_STATION_BUSY: { exit: failure, meaning: 'another kluis process holds this station' },
  E_LOCK_OPEN: { exit: failure, meaning: 'a lock file cannot be opened or taken' },
  E_REJECTED: { exit: failure, meaning: 'a card file was rejected at inventory (its own code was not recorded)' },

  // Card: inventory, acquire, wipe
  E_CARD_NOT_FOUND: { exit: input, meaning: 'the card folder does not exist or cannot be read' },
  E_CARD_NOT_DIR: { exit: input, meaning: 'the card path is not a folder' },
  E_CARD_READ: { exit: input, meaning: 'a file on the card could not be read' },
  E_CARD_CHANGED: { exit: input, meaning: 'a card file changed while it was read' },
  E_CARD_REMOVED: { exit: input, meaning: 'the card was removed before every file was read' },
  E_CARD_SPECIAL: { exit: input, meaning: 'a card entry is a device, pipe or socket, not a file' },
  E_CARD_SYMLINK: { exit: input, meaning: 'a card entry is a symbolic link; links are never followed' },
  E_CARD_WRITABLE: { exit: input, meaning: 'the card is mounted read-write and policy refuses to read it' },
  E_CARD_WIPE: { exit: input, meaning: 'the card could not be wiped (remount or delete failed)' },
  E_INPUT_EMPTY: { exit: input, meaning: 'a card file is empty (0 bytes)' },
  E_INPUT_MISSING: { exit: input, meaning: 'an input file named on the command line does not exist' },

  // Sanitize: formats, proofs, tools
  E_SANITIZE_UNSUPPORTED: { exit: input, meaning: 'the file format is not one kluis sanitizes (judged by its first bytes)' },
  E_SANITIZE_UNSUPPORTED_CODEC: { exit: input, meaning: 'a video stream has a codec kluis does not stream-copy into that container' },
  E_SANITIZE_FORMAT: { exit: input, meaning: 'the file does not start like the format it was handed to' },
  E_SANITIZE_PARSE: { exit: input, meaning: 'the image structure is not one the segment walker understands' },
  E_SANITIZE_TRUNCATED: { exit: input, meaning: 'the image ends inside a segment' },
  E_SANITIZE_TOO_LARGE: { exit: input, meaning: 'the still image is larger than kluis handles' },
  E_SANITIZE_EMPTY: { exit: input, meaning: 'the video file is empty' },
  E_SANITIZE_READ: { exit: input, meaning: 'the file to sanitize could not be read' },
  E_SANITIZE_NO_MOOV: { exit: input, meaning: 'the video has no moov box (index), so it cannot be read' },
  E_SANITIZE_NO_ESSENCE: { exit: input, meaning: 'the video has no picture or sound stream to keep' },
  E_SANITIZE_TRACK_MAP: { exit: input, meaning: 'ffprobe streams and the box tree disagree about the tracks' },
  E_SANITIZE_BOX_COUNT: { exit: input, meaning: 'the video has more boxes than kluis walks' },
  E_SANITIZE_BOX_DEPTH: { exit: input, meaning: 'the video boxes are nested deeper than kluis walks' },
  E_SANITIZE_BOX_FORMAT: { exit: input, meaning: 'a box has a version or layout kluis does not know' },
  E_SANITIZE_BOX_SIZE: { exit: input, meaning: 'a box size is impossible' },
  E_SANITIZE_BOX_TRUNCATED: { exit: input, meaning: 'the video ends inside a box' },
  E_SANITIZE_SAMPLE_TABLE: { exit: input, meaning: 'a video sample table is malformed or names data kluis cannot find' },
  E_SANITIZE_SAMPLE_RANGE: { exit: input, meaning: 'a video track lists samples outside the media data' },
  E_SANITIZE_SAMPLE_OVERLAP: { exit: input, meaning: 'two video tracks claim the same bytes' },
  E_SANITIZE_EXTERNAL_DATA: { exit: input, meaning: 'a video track keeps its samples in another file' },
  E_SANITIZE_ESSENCE: { exit: input, meaning: 'the coded picture or sound changed while sanitizing: the output is withheld' },
  E_SANITIZE_DECODE: { exit: input, meaning: 'the sanitized picture does not decode (or no decoder kluis has reads it): the output is withheld' },
  E_SANITIZE_RESIDUE: { exit: input, meaning: 'an independent re-read found telemetry left in the output: it is withheld' },
  E_SANITIZE_FAILED: { exit: input, meaning: 'sanitizing failed; the original is sealed and kept as it was' },
  E_SANITIZE_TOOL: { exit: input, meaning: 'a reader used for the proof (exifr, ffmpeg) failed on the file' },
  E_SANITIZE_TOOL_MISSING: { exit: input, meaning: 'a tool the proof needs (ffmpeg, ffprobe, perl for ExifTool) is not installed' },
  E_SANITIZE_TOOL_FAILED: { exit: input, meaning: 'a proof tool could not start or stopped with an error' },
  E_SANITIZE_TOOL_TIMEOUT: { exit: input, meaning: 'a proof tool did not finish in time' },
  E_SANITIZE_TOOL_ABORTED: { exit: input, meaning: 'a proof tool was stopped because the run was cancelled' },
  E_SANITIZE_TOOL_OUTPUT: { exit: input, meaning: 'a proof tool printed something kluis cannot read' },

  // Essence methods (how the unchanged picture/sound is proven)
  E_ESSENCE_METHOD: { exit: failure, meaning: 'an essence method in a manifest cannot be read by this build' },
  E_ESSENCE_FORMAT: { exit: failure, meaning: 'an essence method does not apply to this file format' },
  E_ESSENCE_STREAM: { exit: failure, meaning: 'an essence method names a stream the file does not have' },
  E_ESSENCE_AMBIGUOUS: { exit: failure, meaning: 'several streams could be the one an essence method names' },
  E_ESSENCE_UNREADABLE: { exit: failure, meaning: 'a stored file cannot be read as its manifest says, so its essence cannot be recomputed' },

  // Seal: keys and the sealed format
  E_KEY_PARSE: { exit: key, meaning: 'a key is not valid text (bad checksum, prefix or length)' },
  E_KEY_KIND: { exit: key, meaning: 'a key of another kind (recipient, station, admin) was given' },
  E_KEY_MISSING: { exit: key, meaning: 'no key or identity was given where one is needed' },
  E_KEY_PERMISSIONS: { exit: key, meaning: 'a secret key file is readable by others' },
  E_KEY_EXISTS: { exit: key, meaning: 'a key file already exists and is never overwritten' },
  E_KEY_WRITE: { exit: key, meaning: 'a key file cannot be written' },
  E_SEAL_HEADER: { exit: input, meaning: 'the input is not a kluis sealed file' },
  E_SEAL_VERSION: { exit: input, meaning: 'the sealed file has a format version this build does not read' },
  E_SEAL_HEADER_MAC: { exit: mismatch, meaning: 'the sealed file header was altered' },
  E_SEAL_PAYLOAD: { exit: mismatch, meaning: 'a sealed chunk failed authentication (altered, reordered or foreign)' },
  E_SEAL_TRUNCATED: { exit: mismatch, meaning: 'the sealed file is cut short' },
  E_SEAL_TRAILING: { exit: mismatch, meaning: 'the sealed file has data after its last chunk' },
  E_SEAL_NO_RECIPIENT: { exit: key, meaning: 'none of the given identities can open the sealed file' },
  E_SEAL_RECIPIENTS: { exit: config, meaning: 'the number of recipients is out of range' },
  E_SEAL_IMPL: { exit: internal, meaning: 'the requested crypto implementation is not available' },
  E_SEAL_IO: { exit: failure, meaning: 'reading or writing a sealed stream failed' },

  // Manifests, audit log, ASC MHL
  E_MANIFEST_SHAPE: { exit: mismatch, meaning: 'a manifest is not a valid kluis manifest' },
  E_MANIFEST_SIGNATURE: { exit: mismatch, meaning: 'a manifest signature does not verify' },
  E_MANIFEST_STATION: { exit: mismatch, meaning: 'a manifest is signed by another station' },
  E_MANIFEST_INNER: { exit: mismatch, meaning: 'the inner manifest names another batch or station than the outer one' },
  E_MANIFEST_PATH: { exit: mismatch, meaning: 'a manifest names an unsafe path' },
  E_CUSTODY_ALTERED: { exit: mismatch, meaning: 'the custody record on a target is not the one the signed manifest names (changed or replaced)' },
  E_CUSTODY_SEAL: { exit: mismatch, meaning: 'the sealed custody record does not open (altered or cut)' },
  E_CUSTODY_SHAPE: { exit: mismatch, meaning: 'the custody record is not a kluis-custody/1 document' },
  E_CUSTODY_SIGNATURE: { exit: mismatch, meaning: "the custody record's station signature does not verify, or is another station's" },
  E_CUSTODY_MISMATCH: { exit: mismatch, meaning: 'the custody record does not hold together, or disagrees with the signed manifest' },
  E_CUSTODY_MISSING: { exit: missing, meaning: 'a batch that should have a custody record has none on a target' },
  E_AUDIT_MISSING: { exit: missing, meaning: 'there is no audit log where one is expected' },
  E_AUDIT_CORRUPT: { exit: mismatch, meaning: 'the audit log is damaged (a line is not JSON or the chain breaks)' },
  E_AUDIT_OPEN: { exit: storage, meaning: 'the audit log cannot be opened' },
  E_AUDIT_WRITE: { exit: storage, meaning: 'the audit log cannot be written' },
  E_AUDIT_LOCK: { exit: storage, meaning: 'the audit lock file cannot be created' },
  E_AUDIT_LOCKED: { exit: failure, meaning: 'the audit log stayed locked by another process' },
  E_AUDIT_USAGE: { exit: internal, meaning: 'the audit log was used wrongly by kluis itself (a bug)' },
  E_AUDIT_CLOSED: { exit: internal, meaning: 'the audit log was written after it was closed (a bug)' },
  E_MHL_NO_HISTORY: { exit: missing, meaning: 'the folder has no ASC MHL history' },
  E_MHL_ROOT: { exit: input, meaning: 'the ASC MHL root is not a folder' },
  E_MHL_READ: { exit: input, meaning: 'a file named in the ASC MHL cannot be read' },
  E_MHL_LINK: { exit: input, meaning: 'the ascmhl folder is a link or not a folder; it is never followed' },
  E_MHL_PATH: { exit: input, meaning: 'an ASC MHL path points outside its folder' },
  E_MHL_XML: { exit: mismatch, meaning: 'an ASC MHL file is damaged or not ASC MHL' },

  // Verify
  E_VERIFY_MISMATCH: { exit: mismatch, meaning: 'a stored object does not match what was sealed' },
  E_VERIFY_MISSING: { exit: missing, meaning: 'a batch or object was not found on any target' },
  E_VERIFY_CARD_NAME: { exit: input, meaning: 'a card path in the manifest cannot be turned back into a file name on the card' },
  E_VERIFY_UNCHECKED: { exit: couldNotCheck, meaning: 'a target or key could not be reached or used, so nothing was checked' },
  E_VERIFY_PATH: { exit: failure, meaning: 'a manifest path leaves the card folder given to verify' },
  E_DECODE_FAILED: { exit: failure, meaning: 'verify --deep: a stored file does not decode' },
  E_DECODE_UNSUPPORTED: { exit: failure, meaning: 'verify --deep: ffmpeg cannot decode this kind of picture, so it is not checked that way' },

  // Config and policy
  E_CONFIG_MISSING: { exit: config, meaning: 'the config file cannot be read' },
  E_CONFIG_SYNTAX: { exit: config, meaning: 'the config file is not valid JSON' },
  E_CONFIG_SHAPE: { exit: config, meaning: 'the file is not a kluis config file' },
  E_CONFIG_INVALID: { exit: config, meaning: 'the config has a value kluis cannot use' },
  E_CONFIG_UNSIGNED: { exit: config, meaning: 'the config is not signed' },
  E_CONFIG_SIGNATURE: { exit: config, meaning: 'the config was changed after it was signed' },
  E_CONFIG_WRONG_SIGNER: { exit: config, meaning: "the config is signed by a key other than this station's admin key" },
  E_CONFIG_NO_PIN: { exit: config, meaning: 'no admin key is pinned on this station' },
  E_CONFIG_STATION_KEY: { exit: config, meaning: 'the station key on disk is not the one the config names' },
  E_CONFIG_CREDENTIALS: { exit: config, meaning: 'the credentials file is malformed or lacks a name' },
  E_CONFIG_EXISTS: { exit: config, meaning: 'a config already exists where init would write one' },
  E_CONFIG_IPDB: { exit: config, meaning: 'the IP-to-country table cannot be read, or is no MaxMind DB' },
  E_CONFIG_NO_REVISION: { exit: config, meaning: 'the config carries no revision, so it cannot be told from an older copy' },
  E_CONFIG_REPLAYED: { exit: config, meaning: 'the config is older than a revision this station already accepted' },
  E_CONFIG_REVISION_CONFLICT: { exit: config, meaning: 'the station accepted a different config under the same revision' },
  E_CONFIG_STATE: { exit: config, meaning: "the station's record of accepted config revisions cannot be read or written" },
  E_CONFIG_PIN_UNPROTECTED: { exit: config, meaning: 'the pinned admin key could be replaced without root' },
  E_CONFIG_DESK: { exit: config, meaning: 'an evidence desk config was given where a station config is needed' },
  E_CONFIG_NOT_DESK: { exit: config, meaning: "a station config was given where an evidence desk's is needed" },
  E_CONFIG_TRUST: { exit: config, meaning: "a station config a desk should trust is signed by another organisation's admin" },
  E_POLICY_WIPE: { exit: policy, meaning: 'the card is not wiped: the batch is not secured everywhere it must be' },
  E_POLICY_FS_CLOUD: { exit: policy, meaning: 'an fs target cannot be a cloud target (its country cannot be checked)' },

  // Targets and egress
  E_TARGET_UNKNOWN: { exit: failure, meaning: 'a target name is not in the config' },
  E_TARGET_NOT_ALLOWED: { exit: policy, meaning: 'a target is refused by policy' },
  E_TARGET_AUTH: { exit: failure, meaning: 'the target refused the credentials or permission' },
  E_TARGET_UNREACHABLE: { exit: failure, meaning: 'the target could not be reached or answered with a server error (retried)' },
  E_TARGET_IO: { exit: failure, meaning: 'a transfer to or from the target failed (retried)' },
  E_TARGET_FULL: { exit: failure, meaning: 'the target is out of space' },
  E_TARGET_MISSING: { exit: failure, meaning: 'an object is not on the target' },
  E_TARGET_EXISTS: { exit: failure, meaning: 'an object already exists on the target and is never overwritten' },
  E_TARGET_KEY: { exit: failure, meaning: 'an object key is not valid' },
  E_TARGET_BODY: { exit: failure, meaning: 'the local sealed object changed or could not be read during upload' },
  E_TARGET_TLS: { exit: failure, meaning: "TLS verification of the target's certificate failed" },
  E_TARGET_READONLY: { exit: policy, meaning: 'a write to a target opened read-only (an evidence desk) was refused' },
  E_TARGET_PAGE: { exit: internal, meaning: 'a listing page was asked with a size or cursor the target cannot use (a bug)' },
  E_EGRESS_PLAINTEXT: { exit: policy, meaning: 'a cloud target without https is refused' },
  E_EGRESS_RANGE: { exit: policy, meaning: 'an address is refused (private, reserved or unparseable, or a second DNS lookup)' },
  E_EGRESS_COUNTRY: { exit: policy, meaning: 'an address is placed outside the allowed countries' },
  E_EGRESS_VENDOR: { exit: policy, meaning: "a host is on the built-in vendor deny list" },
  E_EGRESS_PIN: { exit: policy, meaning: 'the TLS public key is not the pinned one' },
  E_EGRESS_REDIRECT: { exit: policy, meaning: 'the server answered with a redirect, which is never followed' },
  E_EGRESS_METADATA: { exit: policy, meaning: 'a cloud metadata service address is never allowed' },
  E_EGRESS_IPDB_HASH: { exit: policy, meaning: 'the IP-to-country table is not the pinned one, or has no pin' },

  // Evidence desk output
  E_REPORT_PDF: { exit: failure, meaning: 'the PDF report could not be made (Chromium)' },
  E_REPORT_THUMBNAIL: { exit: failure, meaning: 'a report thumbnail could not be made' },

  // Dashboard
  E_DASHBOARD_BIND: { exit: failure, meaning: 'the dashboard is only served on loopback' },
  E_DASHBOARD_LISTEN: { exit: failure, meaning: 'the dashboard cannot listen on its address' },
  E_DASHBOARD_PORT: { exit: failure, meaning: 'the dashboard port is in use' },
  E_DASHBOARD_REQUEST: { exit: failure, meaning: 'a dashboard request is malformed or too large' },
  E_DASHBOARD_NOT_FOUND: { exit: failure, meaning: 'a dashboard action names a delivery that does not exist' },
  E_DASHBOARD_NOTHING_TO_DO: { exit: failure, meaning: 'a dashboard action has nothing to do (already verified)' },
  E_DASHBOARD_REFUSED: { exit: failure, meaning: 'a dashboard retry of a delivery refused by policy' },
  E_DASHBOARD_INTERNAL: { exit: failure, meaning: 'the dashboard failed unexpectedly on a request' },
  E_DASHBOARD_SCRIPT: { exit: failure, meaning: 'the page script is missing from the build (npm run build bundles it)' },
  E_DESK_REQUEST: { exit: failure, meaning: 'a desk page request is malformed or too large' },
  E_DESK_NOT_FOUND: { exit: failure, meaning: 'a desk page request names a verification that was not started' },
  E_DESK_EXPORT_FOLDER: { exit: usage, meaning: 'the desk page exports only into a new or empty folder given by its whole path' },
  E_DESK_INTERNAL: { exit: failure, meaning: 'the desk page failed unexpectedly on a request' },

  // Bench
  E_BENCH_CARD: { exit: failure, meaning: 'the bench card could not be built' },
  E_BENCH_DISK: { exit: failure, meaning: 'there is not enough free disk for the bench' },
  E_BENCH_RUN: { exit: failure, meaning: 'a bench run of kluis failed' },
  E_BENCH_TOOL: { exit: failure, meaning: 'a tool the bench needs cannot run' },
  E_BENCH_WRITE: { exit: failure, meaning: 'the bench result cannot be written' },
} as const satisfies Record<`E_${string}`, Entry>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Codes that are not errors: recorded per file (the file was kept, sealed as it was, but not
 * delivered as footage) or said about a card. They never decide an exit code.
 */
export const WARNING_CODES = {
  W_SIDECAR_WITHHELD: 'a vendor sidecar (telemetry or proxy) is withheld by policy',
  W_UNKNOWN_WITHHELD: 'a file of a format kluis cannot prove clean is withheld',
  W_CARD_NO_DCIM: 'the card holds no DCIM/ folder (is it really a camera card?); the work goes on',
  W_CARD_STILL_WRITABLE: 'the card could not be set back to read-only after the wipe',
  W_AUDIT_NOT_RECORDED: 'a refusal could not be recorded in the audit log; the refusal itself stands',
  W_EVENT_LISTENER: 'a listener of pipeline events failed; the work goes on',
  W_SEAL_REFERENCE: 'sodium-native is not available; sealing uses the tweetnacl reference implementation (slower, same bytes)',
  W_EXIFTOOL_PER_FILE: 'ExifTool batch mode could not start; ExifTool is started once per file (slower)',
} as const satisfies Record<`W_${string}`, string>;

export type WarningCode = keyof typeof WARNING_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
