/**
 * The JSON the two pages' scripts read from their servers, as types only. It imports nothing, so
 * both the servers (tsconfig.json) and the browser scripts (tsconfig.client.json: DOM, no Node)
 * compile it. The station's view types (state.ts) extend these; the desk server states that each
 * reply `satisfies` its type here. So a field a page reads cannot go missing from a reply without
 * a type error. Fields a page does not read are left out of the Desk* types on purpose: a server
 * may send more.
 */

/** Texts by language, then by key (i18n.ts, desk/texts.ts): GET /api/texts. */
export type TextTables = Record<string, Record<string, string>>;

/** GET /api/session: the CSRF value every action sends back (X-Kluis-CSRF). */
export interface SessionReply {
  csrf: string;
}

/** What either server answers a request it could not serve (with a 4xx/5xx status). */
export interface ErrorReply {
  error: { code: string; message: string; hint?: string };
}

// ---- the station dashboard (GET /api/state, and each `state` event of /api/events) ----

export type CardState = 'inserted' | 'reading' | 'missing' | 'waiting' | 'safe' | 'secured' | 'partial' | 'failed';

export interface ProgressView {
  path: string;
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  /** Bytes per second over the last few seconds; null until two samples exist. */
  rate: number | null;
  /** Seconds left at that rate; null when unknown. */
  eta: number | null;
}

export interface ProblemView {
  path: string;
  status: string;
  code: string;
  message: string;
  hint?: string;
}

export interface DeliveryView {
  object: string;
  /** The card path of the file this object holds, or "manifest"/"report". */
  label: string;
  target: string;
  state: string;
  attempts: number;
  error?: { code: string; message: string };
  canRetry: boolean;
}

export interface VerifyItem {
  object: string;
  label: string;
  target: string;
  result: 'ok' | 'mismatch' | 'missing' | 'unchecked';
  detail?: string;
}

export interface VerifyView {
  running: boolean;
  startedAt: string;
  finishedAt?: string;
  items: VerifyItem[];
}

export interface TargetView {
  name: string;
  type: string;
  class: 'onprem' | 'cloud';
  required: boolean;
  reachable: 'yes' | 'no' | 'unknown';
  lastSuccess?: string;
  lastError?: { code: string; message: string; at: string };
  outbox: number;
  refused: number;
}

/** What was removed from a file: where, what, how many bytes. */
export interface RemovedView {
  where: string;
  what: string;
  bytes: number;
}

/** A file of a card as the station page shows it. */
export interface StationFile {
  path: string;
  class: string;
  status: string;
  format?: string;
  removed?: RemovedView[];
  /** Delivery state per target name. */
  targets?: Record<string, string>;
  error?: { code: string; message: string };
  /** Whether GET /thumb/<batch>?path=… has a thumbnail for it. */
  thumb: boolean;
}

/** A card (one batch) as the station page shows it. */
export interface StationCard {
  batchId: string;
  card: { root: string; label?: string };
  createdAt: string;
  state: CardState;
  phase: string;
  safeToRemoveAt: string | null;
  remaining?: number;
  progress?: ProgressView;
  counts: { footage: number; secured: number };
  problems: ProblemView[];
  files: StationFile[];
  deliveries: DeliveryView[];
  verify?: VerifyView;
}

export interface StationState {
  station: string;
  cards: StationCard[];
  targets: TargetView[];
}

/** POST /api/ticket: the path with a one-use ticket, to open in a new tab. */
export interface TicketReply {
  url: string;
}

// ---- the evidence desk ----

/** GET /api/info */
export interface DeskInfo {
  stations: Array<{ name: string }>;
}

/** GET /api/catalog */
export interface DeskCatalog {
  scannedAt: string;
  /** Batches the targets hold; `batches` are those that match the query. */
  total: number;
  batches: Array<{
    batchId: string;
    startedAt: string;
    station: string;
    case?: string;
    operator?: string;
    files: number;
    status: string;
    targets: string[];
  }>;
}

/** The custody record of a batch, summed up. */
export interface DeskCustody {
  lines: number;
  station: { name: string };
  audit: { seq: number };
  operator?: string;
  case?: string;
  card: { label?: string; uuid?: string; fingerprint?: string };
  times: { cardSeen?: string; safeToRemove?: string; lastSealed?: string };
  recordedAt: string;
  deliveries: Array<{ object: string; target: string; delivered?: string; verified?: string }>;
}

/** GET /api/batch/<id> */
export interface DeskBatch {
  batchId: string;
  station: { name: string };
  /** The target the manifest was read from. */
  target: string;
  startedAt: string;
  operator?: string;
  case?: string;
  card: { label?: string; uuid?: string; fingerprint?: string };
  files: Array<{ path: string; class: string; status: string; size: number; cardSha256?: string; removed?: RemovedView[]; error?: { code: string } }>;
  custody: {
    result: string;
    code?: string;
    message?: string;
    record?: DeskCustody;
    lines?: Array<{ seq: number; time: string; type: string; file?: string; object?: string; target?: string }>;
  };
}

/** GET /api/verify/<id> */
export interface DeskVerifyRun {
  running: boolean;
  error?: { code: string; message: string; hint?: string };
  report?: { result: string; problems: Array<{ message: string; code?: string; hint?: string }> };
}

/** POST /api/export */
export interface DeskExport {
  out: string;
  files: number;
}
