import { describe, expect, it } from 'vitest';
import { etcdPackage } from './proto.ts';
import { messageFields } from './types.ts';

/** What proto-loader keeps of a message type: its DescriptorProto, as an object. */
interface Descriptor {
  readonly field: readonly {
    readonly name: string;
    readonly type: string;
    readonly typeName: string;
  }[];
  readonly oneofDecl: readonly { readonly name: string }[];
}

function descriptorOf(fullName: string): Descriptor {
  const def = etcdPackage()[fullName] as { type?: Descriptor } | undefined;
  if (def?.type === undefined) throw new Error(`${fullName} is not a message of rpc.proto`);
  return def.type;
}

/** A field's type as messageFields writes it: scalars by name, messages and enums as named. */
function fieldsOf(d: Descriptor): Map<string, string> {
  return new Map(
    d.field.map((f) => [
      f.name,
      f.typeName !== '' ? f.typeName : f.type.replace('TYPE_', '').toLowerCase(),
    ]),
  );
}

describe('the hand-written etcd message types (types.ts)', () => {
  it('name every field of the loaded .proto descriptors, each with its type', () => {
    for (const [fullName, fields] of Object.entries(messageFields)) {
      const d = descriptorOf(fullName);
      const ours = new Map(
        Object.entries(fields as Record<string, string>).filter(([, t]) => t !== 'oneof'),
      );
      expect(ours, fullName).toEqual(fieldsOf(d));
      const oneofs = Object.entries(fields as Record<string, string>)
        .filter(([, t]) => t === 'oneof')
        .map(([name]) => name);
      expect(oneofs.sort(), `${fullName} oneofs`).toEqual(d.oneofDecl.map((o) => o.name).sort());
    }
  });

  it('catch a drifted type: a renamed or retyped field fails the comparison', () => {
    const d = descriptorOf('etcdserverpb.RangeRequest');
    const renamed = new Map(Object.entries(messageFields['etcdserverpb.RangeRequest']));
    renamed.delete('range_end');
    renamed.set('rangeEnd', 'bytes');
    expect(renamed).not.toEqual(fieldsOf(d));
    const retyped = new Map(Object.entries(messageFields['etcdserverpb.RangeRequest']));
    retyped.set('limit', 'int32');
    expect(retyped).not.toEqual(fieldsOf(d));
  });
});
