import { HEADER, SESSION_MAX } from '../client/wire.ts';
import { NODE_ID_MAX } from '../kernel/ids.ts';

/**
 * JSON schemas for every route. Validation runs without type coercion and rejects unknown
 * fields, so `{"value": 5}` or a misspelt query parameter is a 400, never silently fixed;
 * query, path and header values are therefore strings with patterns, converted in handlers.
 */
export interface SchemaLimits {
  readonly keyLengthMax: number;
  readonly valueLengthMax: number;
}

const digits = (max: number) => ({ type: 'string', pattern: `^[0-9]{1,${max}}$` }) as const;
const positive = { type: 'string', pattern: '^[1-9][0-9]{0,15}$' } as const;
const consistency = { type: 'string', enum: ['linearizable', 'stale'] } as const;
/** How keys and values travel (src/server/bytes-edge.ts). */
const encoding = { type: 'string', enum: ['text', 'base64'] } as const;
const encodingQuery = {
  type: 'object',
  properties: { encoding },
  additionalProperties: false,
} as const;

export const sessionHeaders = {
  type: 'object',
  properties: { [HEADER.session]: positive, [HEADER.seq]: positive },
} as const;

export function schemas(limits: SchemaLimits) {
  const key = { type: 'string', minLength: 1, maxLength: limits.keyLengthMax } as const;
  const value = { type: 'string', maxLength: limits.valueLengthMax } as const;
  const keyParams = {
    type: 'object',
    required: ['key'],
    properties: { key },
    additionalProperties: false,
  } as const;
  return {
    put: {
      params: keyParams,
      querystring: encodingQuery,
      headers: sessionHeaders,
      body: {
        type: 'object',
        required: ['value'],
        properties: { value },
        additionalProperties: false,
      },
    },
    get: {
      params: keyParams,
      querystring: {
        type: 'object',
        properties: { consistency, encoding },
        additionalProperties: false,
      },
    },
    delete: { params: keyParams, headers: sessionHeaders, querystring: encodingQuery },
    cas: {
      params: keyParams,
      querystring: encodingQuery,
      headers: sessionHeaders,
      body: {
        type: 'object',
        required: ['value'],
        properties: {
          expected: { type: ['string', 'null'], maxLength: limits.valueLengthMax },
          expectedVersion: { type: 'integer', minimum: 0, maximum: SESSION_MAX },
          value,
        },
        additionalProperties: false,
      },
    },
    list: {
      querystring: {
        type: 'object',
        properties: {
          prefix: { type: 'string', maxLength: limits.keyLengthMax },
          limit: digits(9),
          consistency,
          encoding,
        },
        additionalProperties: false,
      },
    },
    watch: {
      querystring: {
        type: 'object',
        properties: {
          prefix: { type: 'string', maxLength: limits.keyLengthMax },
          fromRevision: digits(16),
          encoding,
        },
        additionalProperties: false,
      },
      headers: { type: 'object', properties: { 'last-event-id': digits(16) } },
    },
    addMember: {
      body: {
        type: 'object',
        required: ['id', 'peerAddress', 'clientUrl'],
        properties: {
          id: { type: 'integer', minimum: 1, maximum: NODE_ID_MAX },
          peerAddress: { type: 'string', pattern: '^[^\\s/]+:[0-9]{1,5}$', maxLength: 300 },
          clientUrl: { type: 'string', pattern: '^https?://[^\\s]+$', maxLength: 2048 },
        },
        additionalProperties: false,
      },
    },
    member: {
      params: {
        type: 'object',
        required: ['id'],
        properties: { id: digits(10) },
        additionalProperties: false,
      },
    },
  } as const;
}
