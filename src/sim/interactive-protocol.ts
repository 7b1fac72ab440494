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
  /** What the client does with a reply: done, or resend to another node. */
  onReply(reply: T['reply']): ClientReaction;
  describeMessage(msg: T['msg']): MessageLook;
  /** A one-line caption for an observer event, or undefined for events not worth showing. */
  describeEvent(event: T['event']): string | undefined;
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
  | { readonly kind: 'accepted'; readonly index: number; readonly term: number }
  | { readonly kind: 'redirect'; readonly to: NodeId | undefined }
  /** The protocol decided the request's outcome outright (a chosen value, for example). */
  | { readonly kind: 'decided'; readonly note: string }
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
