import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { NO_NODE, type NodeId } from '../kernel/ids.ts';
import type { EngineStatus } from './engine.ts';

/**
 * What a consensus engine and its runtime report. Engines are handed a `ServerMetrics` (which
 * implements this) at construction; the interface is structural, so a runtime that may not
 * import the server layer can declare the same shape.
 */
export interface EngineMetrics {
  /** One fsync of the WAL took `seconds`. */
  observeFsync(seconds: number): void;
  /** A client command was proposed to the log. */
  proposal(): void;
  /** `entries` more log entries became committed. */
  commit(entries: number): void;
  /** Committed but not yet applied entries, now. */
  applyLag(entries: number): void;
  /** This node started an election (or a Paxos phase 1 to take over). */
  election(): void;
  /** This node saw the leader change (including to "no leader"). */
  leaderChange(): void;
  /** `bytes` were written to the connection to `peer`. */
  bytesSent(bytes: number, peer: NodeId): void;
}

export interface ServerMetricsOptions {
  /** Also export Node process metrics (CPU, memory, event loop lag) from this registry. */
  readonly processMetrics?: boolean;
  /** Distinct peers a `bytesSent` label may name; more are counted under peer "other". */
  readonly peerLabelsMax?: number;
  /** The quorate version, exported as `quorate_build_info{version,node}`. */
  readonly version?: string;
}

/** The engine's state as one gauge each, set at scrape time (names as etcd's where it has one). */
const statusGauges = {
  term: ['quorate_term', 'Current term (Raft) or ballot round (Multi-Paxos).'],
  commitIndex: ['quorate_commit_index', 'Highest log index known committed.'],
  appliedIndex: ['quorate_applied_index', 'Highest log index applied to the state machine.'],
  revision: ['quorate_revision', 'Key-value store revision.'],
  isLeader: ['quorate_is_leader', '1 when this node leads, else 0.'],
  hasLeader: ['quorate_has_leader', '1 when this node knows a leader, else 0.'],
  members: ['quorate_members', 'Members in the configuration, learners included.'],
} as const;

/** WAL fsyncs span ~50µs (NVMe, battery-backed cache) to seconds (a stalled disk). */
const fsyncBucketsSeconds = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
const httpBucketsSeconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/**
 * Every Prometheus series of one node, in its own registry (never the global one), so
 * several servers can live in one process, as they do in tests.
 */
export class ServerMetrics implements EngineMetrics {
  readonly registry = new Registry();
  private readonly peerLabels = new Set<string>();
  private readonly peerLabelsMax: number;
  private readonly proposals: Counter;
  private readonly commits: Counter;
  private readonly lag: Gauge;
  private readonly fsync: Histogram;
  private readonly elections: Counter;
  private readonly leaderChanges: Counter;
  private readonly peerBytes: Counter<'peer'>;
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpSeconds: Histogram<'method' | 'route'>;
  private readonly statusGauges: Record<keyof typeof statusGauges, Gauge>;

  constructor(options: ServerMetricsOptions = {}) {
    this.peerLabelsMax = options.peerLabelsMax ?? 64;
    if (!Number.isInteger(this.peerLabelsMax) || this.peerLabelsMax < 1) {
      throw new RangeError(`peerLabelsMax must be a positive integer, got ${this.peerLabelsMax}`);
    }
    const registers = [this.registry];
    this.proposals = new Counter({
      name: 'quorate_proposals_total',
      help: 'Client commands proposed to the log.',
      registers,
    });
    this.commits = new Counter({
      name: 'quorate_commits_total',
      help: 'Log entries committed.',
      registers,
    });
    this.lag = new Gauge({
      name: 'quorate_apply_lag_entries',
      help: 'Committed log entries not yet applied to the state machine.',
      registers,
    });
    this.fsync = new Histogram({
      name: 'quorate_wal_fsync_duration_seconds',
      help: 'Time to fsync the write-ahead log.',
      buckets: fsyncBucketsSeconds,
      registers,
    });
    this.elections = new Counter({
      name: 'quorate_elections_total',
      help: 'Elections (or leadership takeovers) started by this node.',
      registers,
    });
    this.leaderChanges = new Counter({
      name: 'quorate_leader_changes_total',
      help: 'Leader changes seen by this node.',
      registers,
    });
    this.peerBytes = new Counter({
      name: 'quorate_peer_sent_bytes_total',
      help: 'Bytes sent to each peer.',
      labelNames: ['peer'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'quorate_http_requests_total',
      help: 'Client API requests answered, by route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpSeconds = new Histogram({
      name: 'quorate_http_request_duration_seconds',
      help: 'Client API request latency, by route pattern.',
      labelNames: ['method', 'route'],
      buckets: httpBucketsSeconds,
      registers,
    });
    const gauge = ([name, help]: readonly [string, string]) => new Gauge({ name, help, registers });
    this.statusGauges = {
      term: gauge(statusGauges.term),
      commitIndex: gauge(statusGauges.commitIndex),
      appliedIndex: gauge(statusGauges.appliedIndex),
      revision: gauge(statusGauges.revision),
      isLeader: gauge(statusGauges.isLeader),
      hasLeader: gauge(statusGauges.hasLeader),
      members: gauge(statusGauges.members),
    };
    new Gauge({
      name: 'quorate_build_info',
      help: 'Always 1; the labels say which quorate and Node.js run this node.',
      labelNames: ['version', 'node'],
      registers,
    }).set({ version: options.version ?? 'unknown', node: process.version }, 1);
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry });
  }

  observeFsync(seconds: number): void {
    this.fsync.observe(seconds);
  }

  proposal(): void {
    this.proposals.inc();
  }

  commit(entries: number): void {
    if (entries > 0) this.commits.inc(entries);
  }

  applyLag(entries: number): void {
    this.lag.set(entries);
  }

  election(): void {
    this.elections.inc();
  }

  leaderChange(): void {
    this.leaderChanges.inc();
  }

  bytesSent(bytes: number, peer: NodeId): void {
    this.peerBytes.inc({ peer: this.peerLabel(peer) }, bytes);
  }

  /** One answered client API request; `route` is the route pattern, never the raw URL. */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    this.httpSeconds.observe({ method, route }, seconds);
  }

  /** Copies the engine's state into gauges; called just before each scrape. */
  recordStatus(status: EngineStatus): void {
    const g = this.statusGauges;
    g.term.set(status.term);
    g.commitIndex.set(status.commitIndex);
    g.appliedIndex.set(status.appliedIndex);
    g.revision.set(status.revision);
    g.isLeader.set(status.leader === status.id ? 1 : 0);
    g.hasLeader.set(status.leader === NO_NODE ? 0 : 1);
    g.members.set(status.members.length);
  }

  /** The Prometheus text exposition and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Peer ids are operator-chosen and unbounded in principle; label cardinality is not. */
  private peerLabel(peer: NodeId): string {
    const label = String(peer);
    if (this.peerLabels.has(label)) return label;
    if (this.peerLabels.size >= this.peerLabelsMax) return 'other';
    this.peerLabels.add(label);
    return label;
  }
}
