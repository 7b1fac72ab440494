/**
 * On-disk format of WAL segments, as pure functions over bytes so recovery rules can be
 * tested without files.
 *
 *   segment = header record*
 *   header  = magic "QWAL" u32 | version u8 | flags u8 | 0 u16 | firstSeq u64 | crc32c u32
 *   record  = len u32 | crc32c u32 | type u8 | payload (len bytes)
 *
 * All integers little-endian. A record's crc covers its len, type and payload, so a damaged
 * length is caught too. Segment files are named by their first seq, 16 hex digits + ".wal".
 */
import { assert } from '../../kernel/assert.ts';
import { crc32c } from '../crc32c.ts';
import { WalCorruptionError } from './wal.ts';

export const SEGMENT_MAGIC = 0x4c415751; // "QWAL" read as little-endian u32
export const SEGMENT_VERSION = 1;
export const HEADER_BYTES = 20;
export const RECORD_HEADER_BYTES = 9;
/** Header flag: this segment starts a fresh log; every segment before it is superseded. */
export const FLAG_RESET = 1;

export function segmentName(firstSeq: number): string {
  return `${firstSeq.toString(16).padStart(16, '0')}.wal`;
}

/** The first seq encoded in a segment's file name, or undefined for other files. */
export function parseSegmentName(name: string): number | undefined {
  const m = /^([0-9a-f]{16})\.wal$/.exec(name);
  if (!m) return undefined;
  const seq = Number.parseInt(m[1] as string, 16);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

export function encodeHeader(firstSeq: number, flags: number): Uint8Array {
  assert(Number.isSafeInteger(firstSeq) && firstSeq >= 0, `bad segment first seq ${firstSeq}`);
  const bytes = new Uint8Array(HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, SEGMENT_MAGIC, true);
  view.setUint8(4, SEGMENT_VERSION);
  view.setUint8(5, flags);
  view.setBigUint64(8, BigInt(firstSeq), true);
  view.setUint32(16, crc32c(bytes.subarray(0, 16)), true);
  return bytes;
}

/** Encodes records back to back into `out` at `at`; returns the offset after the last. */
export function encodeRecord(out: Uint8Array, at: number, type: number, payload: Uint8Array) {
  assert(Number.isInteger(type) && type >= 0 && type <= 255, `record type ${type} is not a u8`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(at, payload.length, true);
  out[at + 8] = type;
  out.set(payload, at + RECORD_HEADER_BYTES);
  view.setUint32(at + 4, recordCrc(out, at, payload.length), true);
  return at + RECORD_HEADER_BYTES + payload.length;
}

function recordCrc(bytes: Uint8Array, at: number, len: number): number {
  const lenCrc = crc32c(bytes.subarray(at, at + 4));
  return crc32c(bytes.subarray(at + 8, at + RECORD_HEADER_BYTES + len), lenCrc);
}

export interface SegmentHeader {
  readonly firstSeq: number;
  readonly flags: number;
}

/** undefined when the header is short or all zeros (a segment whose creation was torn). */
export function decodeHeader(bytes: Uint8Array, file: string): SegmentHeader | undefined {
  if (bytes.length < HEADER_BYTES || allZero(bytes, 0, HEADER_BYTES)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== SEGMENT_MAGIC) {
    throw new WalCorruptionError(file, 0, 'not a WAL segment (bad magic)');
  }
  if (view.getUint32(16, true) !== crc32c(bytes.subarray(0, 16))) {
    throw new WalCorruptionError(file, 0, 'segment header checksum mismatch');
  }
  const version = view.getUint8(4);
  if (version !== SEGMENT_VERSION) {
    throw new WalCorruptionError(file, 4, `unsupported segment version ${version}`);
  }
  const firstSeq = Number(view.getBigUint64(8, true));
  assert(Number.isSafeInteger(firstSeq), `${file}: first seq beyond 2^53`);
  return { firstSeq, flags: view.getUint8(5) };
}

export interface SegmentScan {
  /** Byte offset of each whole record, in order. */
  readonly offsets: number[];
  /** Where the valid data ends; bytes after it are a torn tail to cut off. */
  readonly validEnd: number;
}

/**
 * Walks the records of one segment. A damaged record in the last segment is a torn write
 * (cut off) when it is the last thing in the file: its header or payload is cut short, it
 * runs exactly to the end, or only zeros follow it. Anything else is corruption before the
 * tail and throws `WalCorruptionError` with the file and byte offset.
 *
 * This matches what kill -9 can leave (the page cache keeps every completed write, so only
 * the last write can be short). After a power loss a multi-page batch can land out of order;
 * the rule then errs towards refusing to start rather than silently dropping records.
 */
export function scanSegment(
  bytes: Uint8Array,
  file: string,
  isLast: boolean,
  recordBytesMax: number,
): SegmentScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const offsets: number[] = [];
  let at = HEADER_BYTES;
  while (at < bytes.length) {
    const problem = recordProblem(bytes, view, at, recordBytesMax);
    if (problem === undefined) {
      offsets.push(at);
      at += RECORD_HEADER_BYTES + view.getUint32(at, true);
      continue;
    }
    if (isLast && isTornTail(bytes, view, at, recordBytesMax)) return { offsets, validEnd: at };
    throw new WalCorruptionError(file, at, problem);
  }
  return { offsets, validEnd: at };
}

function recordProblem(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  recordBytesMax: number,
): string | undefined {
  if (bytes.length - at < RECORD_HEADER_BYTES) return 'record header cut short';
  const len = view.getUint32(at, true);
  if (len > recordBytesMax) return `record length ${len} exceeds ${recordBytesMax}`;
  if (at + RECORD_HEADER_BYTES + len > bytes.length) return 'record payload cut short';
  if (view.getUint32(at + 4, true) !== recordCrc(bytes, at, len)) return 'record checksum mismatch';
  return undefined;
}

function isTornTail(bytes: Uint8Array, view: DataView, at: number, recordBytesMax: number) {
  const size = bytes.length;
  if (size - at < RECORD_HEADER_BYTES) return true;
  if (allZero(bytes, at, size)) return true;
  const len = view.getUint32(at, true);
  if (len > recordBytesMax) return false;
  const end = at + RECORD_HEADER_BYTES + len;
  return end >= size || allZero(bytes, end, size);
}

function allZero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}
