/**
 * The Node runtime's ground for real nodes: durable storage and the peer transport.
 * Protocol-independent: a Raft or Multi-Paxos host drives a core (kernel/core.ts) and uses
 * these to carry out each `Ready` batch.
 *
 * Each seam has a memory implementation (the reference, for tests and simulations of hosts)
 * and a real one, checked by the same conformance suite.
 */

/** CRC32C (Castagnoli), used by every on-disk format here. */
export { crc32c } from './crc32c.ts';
export type { FileWalOptions } from './storage/file-wal.ts';
/** Segment-file WAL with group commit; `WalCorruptionError` on damage before the tail. */
export { FileWal } from './storage/file-wal.ts';
export type { HardStateStore } from './storage/hard-state.ts';
/** Term/vote-style state in a two-slot file: one fdatasync per save, torn saves fall back. */
export { FileHardStateStore, MemoryHardStateStore } from './storage/hard-state.ts';
export { MemoryWal } from './storage/memory-wal.ts';
export type { SnapshotInfo, SnapshotStore, SnapshotWriter } from './storage/snapshot.ts';
/** Atomic snapshots written and read as chunk streams. */
export {
  FileSnapshotStore,
  MemorySnapshotStore,
  SnapshotCorruptionError,
  writeSnapshot,
} from './storage/snapshot.ts';
export type { Wal, WalEntry, WalMetrics, WalRecord } from './storage/wal.ts';
export { WalCorruptionError } from './storage/wal.ts';
export type { Codec } from './transport/codec.ts';
/** MessagePack with bigint (int64 range) and Uint8Array support. */
export { msgpackCodec } from './transport/codec.ts';
export type { DatagramKey, OpenResult } from './transport/datagram-seal.ts';
export {
  deriveDatagramKey,
  openDatagram,
  ReplayWindow,
  SEAL_OVERHEAD_BYTES,
  sealDatagram,
} from './transport/datagram-seal.ts';
/** The gossip core's binary message format as a transport codec. */
export { gossipDatagramCodec } from './transport/gossip-codec.ts';
export type { MemoryTransportOptions } from './transport/memory-transport.ts';
export { MemoryNetwork, MemoryTransport } from './transport/memory-transport.ts';
export type { TcpTransportOptions, TlsOptions } from './transport/tcp-transport.ts';
/** TCP/TLS peer transport with HMAC mutual authentication and bounded per-peer queues. */
export { TcpTransport } from './transport/tcp-transport.ts';
export type {
  MessageHandler,
  PeerAddress,
  PeerStats,
  QueueLimits,
  SendResult,
  Transport,
} from './transport/transport.ts';
export type {
  DatagramCrypto,
  DatagramDrop,
  UdpTransportOptions,
} from './transport/udp-transport.ts';
/** UDP peer transport: one AES-256-GCM sealed datagram per message, replay window, key rotation. */
export { PACKET_BYTES_DEFAULT, UdpTransport } from './transport/udp-transport.ts';
