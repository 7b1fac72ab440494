/**
 * The runtime set of a discriminated union's `type` tags, derived from the union itself:
 * the record given must list every member of the union and nothing else, so a message kind
 * added to a protocol without a place in its set fails to compile instead of being dropped
 * at run time as "unknown" (or, worse, passed through unchecked).
 *
 *     const raftMsgKinds = kindSet<RaftMsg<KvCommand>>()({ requestVote: true, ... });
 */
export function kindSet<U extends { readonly type: string }>(): <
  R extends { readonly [K in U['type']]: true },
>(
  every: R & { readonly [K in Exclude<keyof R, U['type']>]: never },
) => ReadonlySet<U['type']> {
  return (every) => new Set(Object.keys(every) as U['type'][]);
}
