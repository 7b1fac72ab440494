import type { Json } from '../../check/history.ts';
import { NO_NODE, type NodeId } from '../../kernel/ids.ts';
import { CLIENT, type Flight, type NodeState } from '../../sim/interactive.ts';
import type { LogCell, MessageLook, MessageTone } from '../../sim/interactive-protocol.ts';

/**
 * Replays a JSON Lines trace written by `quorate sim --trace` (record types in
 * src/sim/trace.ts): the cluster's state after any prefix of the records, forward and
 * backward. States are rebuilt from checkpoints taken every `checkpointEvery` records, so
 * stepping back costs at most that many record applications.
 */
export interface TraceRecord {
  readonly t: number;
  readonly type: string;
  readonly [field: string]: Json;
}

interface ReplayNode {
  id: NodeId;
  up: boolean;
  role: string;
  term: number;
  leader: NodeId;
  applied: number;
  log: LogCell[];
}

interface ReplayState {
  nodes: ReplayNode[];
  flights: Map<number, Flight>;
  caption: string;
}

/** Log cells kept per replayed node (the newest). */
const LOG_CELLS_MAX = 14;
/** Records at most in one trace the viewer loads (a huge trace is cut, and says so). */
export const TRACE_RECORDS_MAX = 2_000_000;

export class TraceModel {
  readonly records: readonly TraceRecord[];
  readonly protocol: string;
  readonly members: readonly NodeId[];
  readonly truncated: boolean;
  /** Delivery (or drop) time and drop reason of each message id. */
  private readonly fate = new Map<number, { t: number; lost: string | undefined }>();
  private readonly checkpoints: ReplayState[] = [];

  constructor(
    text: string,
    private readonly checkpointEvery = 256,
  ) {
    const { records, truncated } = parse(text);
    this.records = records;
    this.truncated = truncated;
    const start = records[0];
    if (start === undefined || start.type !== 'start') {
      throw new Error('not a quorate trace: the first record must be of type "start"');
    }
    this.protocol = String(start.protocol);
    this.members = Array.isArray(start.nodes) ? start.nodes.map(Number) : [];
    for (const r of records) {
      if (r.type === 'deliver' || r.type === 'drop') {
        const id = Number(r.id);
        if (!this.fate.has(id)) {
          this.fate.set(id, { t: r.t, lost: r.type === 'drop' ? String(r.reason) : undefined });
        }
      }
    }
    let state = this.initial();
    for (let i = 0; i < records.length; i++) {
      if (i % checkpointEvery === 0) this.checkpoints.push(clone(state));
      state = this.apply(state, records[i]!);
    }
  }

  get length(): number {
    return this.records.length;
  }

  /** The cluster after the first `count` records (0 = before any). */
  at(count: number): { nodes: NodeState[]; flights: Flight[]; caption: string; now: number } {
    const n = Math.max(0, Math.min(count, this.records.length));
    const base = Math.floor(n / this.checkpointEvery);
    let state = clone(this.checkpoints[base] ?? this.initial());
    for (let i = base * this.checkpointEvery; i < n; i++)
      state = this.apply(state, this.records[i]!);
    const now = n === 0 ? 0 : this.records[n - 1]!.t;
    return {
      nodes: state.nodes.map(toNodeState),
      flights: [...state.flights.values()],
      caption: state.caption,
      now,
    };
  }

  private initial(): ReplayState {
    return {
      nodes: this.members.map((id) => ({
        id,
        up: true,
        role: 'follower',
        term: 0,
        leader: NO_NODE,
        applied: 0,
        log: [],
      })),
      flights: new Map(),
      caption: '',
    };
  }

  private node(state: ReplayState, id: Json | undefined): ReplayNode | undefined {
    return state.nodes.find((n) => n.id === Number(id));
  }

  private apply(state: ReplayState, r: TraceRecord): ReplayState {
    switch (r.type) {
      case 'send': {
        const id = Number(r.id);
        const fate = this.fate.get(id);
        state.flights.set(id, {
          id,
          from: endpointOf(r.from),
          to: endpointOf(r.to),
          sentAt: r.t,
          arriveAt: fate?.t ?? r.t + 5,
          look: lookOf(r.msg),
          lost: fate?.lost,
        });
        return state;
      }
      case 'deliver':
      case 'drop':
        state.flights.delete(Number(r.id));
        return state;
      case 'apply':
        this.applyItem(state, r);
        return state;
      case 'event':
        this.applyEvent(state, r);
        return state;
      case 'fault':
        this.applyFault(state, r.action);
        return state;
      case 'history':
        state.caption = `client ${r.process}: ${r.event} ${r.f} ${r.key ?? ''} ${JSON.stringify(r.value)}`;
        return state;
      case 'phase':
        state.caption = `phase: ${r.phase} (faults stop, network healed)`;
        return state;
      case 'end':
        state.caption = `end: ${r.verdict}: ${r.message}`;
        return state;
      default:
        return state;
    }
  }

  private applyItem(state: ReplayState, r: TraceRecord): void {
    const n = this.node(state, r.node);
    if (n === undefined) return;
    n.applied++;
    n.log.push(cellOf(r.item, n.applied));
    if (n.log.length > LOG_CELLS_MAX) n.log.shift();
  }

  private applyEvent(state: ReplayState, r: TraceRecord): void {
    const n = this.node(state, r.node);
    const e = r.event;
    if (n === undefined || e === null || typeof e !== 'object' || Array.isArray(e)) return;
    const term = typeof e.term === 'number' ? e.term : n.term;
    switch (e.type) {
      case 'roleChanged':
        n.role = String(e.role);
        n.term = term;
        n.leader = Number(e.leader ?? 0);
        break;
      case 'elected':
        n.role = 'leader';
        n.term = term;
        n.leader = n.id;
        break;
      case 'primary':
        n.leader = Number(e.primary);
        n.role = n.leader === n.id ? 'primary' : 'backup';
        break;
      case 'dropped':
        return;
      default:
        n.term = term;
    }
    state.caption = `n${n.id}: ${JSON.stringify(e)}`;
  }

  private applyFault(state: ReplayState, action: Json | undefined): void {
    if (action === null || typeof action !== 'object' || Array.isArray(action)) return;
    state.caption = `fault: ${JSON.stringify(action)}`;
    const n = this.node(state, action.node);
    if (n === undefined) return;
    if (action.type === 'crash') {
      n.up = false;
      n.role = 'down';
    } else if (action.type === 'restart') {
      n.up = true;
      n.role = 'follower';
      n.applied = 0;
      n.log = [];
    }
  }
}

function parse(text: string): { records: TraceRecord[]; truncated: boolean } {
  const records: TraceRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (records.length >= TRACE_RECORDS_MAX) return { records, truncated: true };
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`line ${i + 1} is not JSON`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error(`line ${i + 1} is not a JSON object`);
    }
    const rec = value as { t?: unknown; type?: unknown };
    if (typeof rec.t !== 'number' || typeof rec.type !== 'string') {
      throw new Error(`line ${i + 1} lacks a numeric "t" or a string "type"`);
    }
    records.push(value as TraceRecord);
  }
  return { records, truncated: false };
}

function clone(state: ReplayState): ReplayState {
  return {
    nodes: state.nodes.map((n) => ({ ...n, log: [...n.log] })),
    flights: new Map(state.flights),
    caption: state.caption,
  };
}

/** `n3` is node 3; clients (`c2`) are all drawn as the one client. */
function endpointOf(name: Json | undefined): NodeId {
  const s = String(name);
  return s.startsWith('n') ? Number(s.slice(1)) : CLIENT;
}

function toneOf(type: string): MessageTone {
  const t = type.toLowerCase();
  if (t.includes('vote') || t.includes('prepare') || t.includes('promise')) {
    return t.includes('reply') || t.includes('promise') ? 'voteReply' : 'vote';
  }
  if (t.includes('heartbeat')) return 'heartbeat';
  if (t.includes('reply') || t.includes('ack') || t.includes('accepted')) return 'appendReply';
  if (t.includes('append') || t.includes('replicate') || t.includes('accept')) return 'append';
  return 'other';
}

function lookOf(msg: Json | undefined): MessageLook {
  if (msg !== null && typeof msg === 'object' && !Array.isArray(msg) && 'type' in msg) {
    const type = String(msg.type);
    return { label: type, tone: toneOf(type) };
  }
  return { label: 'request', tone: 'other' };
}

function cellOf(item: Json | undefined, applied: number): LogCell {
  if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
    const entry = item.entry;
    if (
      entry !== null &&
      typeof entry === 'object' &&
      !Array.isArray(entry) &&
      entry !== undefined
    ) {
      const label = entry.kind === 'normal' ? commandLabel(entry.data) : String(entry.kind);
      return { index: Number(entry.index), term: Number(entry.term), label };
    }
    if ('key' in item) return { index: applied, term: 0, label: `${item.key}=${item.value}` };
  }
  return { index: applied, term: 0, label: JSON.stringify(item).slice(0, 6) };
}

/** A short label for a log command: a key-value command shows its operation and key. */
function commandLabel(data: Json | undefined): string {
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    const op = data.op;
    if (op !== null && typeof op === 'object' && !Array.isArray(op) && op !== undefined) {
      return `${op.f} ${op.key ?? ''}`;
    }
  }
  return typeof data === 'string' ? data : JSON.stringify(data);
}

function toNodeState(n: ReplayNode): NodeState {
  return {
    id: n.id,
    up: n.up,
    view: {
      role: n.up ? n.role : 'down',
      term: n.term,
      leader: n.leader,
      commit: n.log.at(-1)?.index ?? 0,
      applied: n.applied,
      log: n.log,
      electionTimer: false,
    },
    timerStart: 0,
    timerDeadline: Number.POSITIVE_INFINITY,
  };
}
