import type { Core, CoreTypes } from '../kernel/core.ts';
import type { NodeId } from '../kernel/ids.ts';
import type { Rng } from '../kernel/rng.ts';

/**
 * What the playground needs from a protocol family: how to build and restart a core, what
 * its disk is, how to draw its state and messages, and how a client talks to it. Everything
 * protocol-specific in the browser goes through this adapter, so the engine, the canvas
 * and the controls are shared by Raft, primary-backup and the Paxos family.
 */
export interface PlaygroundProtocol<T extends CoreTypes, Durable> {
  readonly name: string;
  readonly title: string;
  createCore(init: PlaygroundCoreInit<Durable>): Core<T>;
  emptyDurable(members: readonly NodeId[]): Durable;
  /** The disk after `item` was written; may mutate `durable`. */
  applyPersist(durable: Durable, item: T['persist']): Durable;
  /** What the node looks like now; `core` is undefined while the node is crashed. */
  nodeView(core: Core<T> | undefined, durable: Durable): NodeView;
  /** A client request carrying `value`, with the client's request id. */
  clientRequest(requestId: number, value: string): T['request'];
  /**
   * For protocols whose clients talk to every acceptor themselves (Fast Paxos): the
   * requests one proposal sends, one per node. Absent: a request goes to one node.
   */
  fanOut?(requestId: number, value: string, members: readonly NodeId[]): readonly FanOutSend<T>[];
  /** The request a reply answers, when the reply names it other than by an `id` field. */
  requestIdOf?(reply: T['reply']): number | undefined;
  /** A line under the canvas that explains what to look for (quorum sizes, colours). */
  legend?(members: readonly NodeId[]): string;
  /** What the client does with a reply: done, or resend to another node. */
  onReply(reply: T['reply']): ClientReaction;
  describeMessage(msg: T['msg']): MessageLook;
  /** A one-line caption for an observer event, or undefined for events not worth showing. */
  describeEvent(event: T['event']): string | undefined;
}

export interface FanOutSend<T extends CoreTypes> {
  readonly to: NodeId;
  readonly request: T['request'];
}

export interface PlaygroundCoreInit<Durable> {
  readonly id: NodeId;
  readonly members: readonly NodeId[];
  /** Undefined on first boot, else what the disk holds (copy what you keep). */
  readonly durable: Durable | undefined;
  readonly rng: Rng;
  readonly now: number;
}

export type ClientReaction =
  /** Accepted at `index` in `term`; index 0 when the place is not known yet (Multi-Paxos). */
  | { readonly kind: 'accepted'; readonly index: number; readonly term: number }
  | { readonly kind: 'redirect'; readonly to: NodeId | undefined }
  /**
   * The protocol decided the request's outcome outright (a chosen value, for example);
   * `value`, when given, is what was decided, so the client can tell whether it won.
   */
  | { readonly kind: 'decided'; readonly note: string; readonly value?: string }
  | { readonly kind: 'failed'; readonly reason: string };

/** How a message dot is drawn: a short label and a colour class. */
export interface MessageLook {
  readonly label: string;
  /** One of the colour classes the renderer knows (see render/colors.ts). */
  readonly tone: MessageTone;
}

export type MessageTone = 'vote' | 'voteReply' | 'append' | 'appendReply' | 'heartbeat' | 'other';

/** One log entry as drawn: its index, term and a short label. */
export interface LogCell {
  readonly index: number;
  readonly term: number;
  readonly label: string;
  /** The client values inside (a Multi-Paxos batch); requests accepted at index 0 match these. */
  readonly values?: readonly string[];
}

export interface NodeView {
  readonly role: string;
  readonly term: number;
  /** 0 when no leader is known. */
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  /** The newest entries of the log, oldest first (bounded by the adapter). */
  readonly log: readonly LogCell[];
  /** Whether this role's timer is an election timeout (drawn as a ring running down). */
  readonly electionTimer: boolean;
  /** Text under the node id; `T<term>` when absent (a Paxos node shows its promise). */
  readonly badge?: string;
}
