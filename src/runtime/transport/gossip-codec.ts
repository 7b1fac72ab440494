import { decodeMsg, encodeMsg, type GossipMsg } from '../../gossip/index.ts';
import type { Codec } from './codec.ts';

/** The gossip core's compact binary format (sized by its byte model) as a transport codec. */
export const gossipDatagramCodec: Codec<GossipMsg> = {
  encode: encodeMsg,
  decode(bytes) {
    const msg = decodeMsg(bytes);
    if (msg === undefined) throw new Error('malformed gossip datagram');
    return msg;
  },
};
