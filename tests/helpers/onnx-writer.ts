// Writes small ONNX models for tests, straight from onnx.proto3's field numbers (ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto): enough for graphs a test needs to misbehave in ways a real exporter
// would not produce, such as a Loop of 10^12 iterations.

type Field = [number, number | bigint | string | Uint8Array | Field[]];

const ELEM = { float: 1, int64: 7, bool: 9 } as const;
type Elem = keyof typeof ELEM;

function varint(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x) b |= 0x80;
    out.push(b);
  } while (x);
  return out;
}

/** A message from [field number, value] pairs: integers as varints, strings, bytes and sub-messages length-delimited. */
function message(fields: Field[]): Uint8Array {
  const out: number[] = [];
  for (const [n, v] of fields) {
    if (typeof v === 'number' || typeof v === 'bigint') {
      out.push(...varint(BigInt(n) << 3n), ...varint(BigInt(v)));
      continue;
    }
    const bytes = typeof v === 'string' ? new TextEncoder().encode(v) : v instanceof Uint8Array ? v : message(v);
    out.push(...varint((BigInt(n) << 3n) | 2n), ...varint(BigInt(bytes.length)), ...bytes);
  }
  return new Uint8Array(out);
}

/** A tensor's type and shape; a string dimension is symbolic, `null` leaves the shape unknown. */
function valueInfo(name: string, elem: Elem, shape: (number | string)[] | null): Field[] {
  const tensor: Field[] = [[1, ELEM[elem]]];
  if (shape) tensor.push([2, shape.map((d): Field => [1, typeof d === 'number' ? [[1, d]] : [[2, d]]])]);
  return [[1, name], [2, [[1, tensor]]]];
}

function node(op: string, inputs: string[], outputs: string[], attributes: Field[][] = []): Field[] {
  return [...inputs.map((i): Field => [1, i]), ...outputs.map((o): Field => [2, o]), [3, `${op}_${outputs[0]}`], [4, op], ...attributes.map((a): Field => [5, a])];
}

function scalar(name: string, elem: Elem, raw: Uint8Array): Field[] {
  return [[2, ELEM[elem]], [8, name], [9, raw]];
}

/**
 * A "reward model" (input_ids int64 [batch, seq] in, logits float [1, 1] out) whose score is the sum of the ids plus
 * `trips` additions of 1 in a Loop: with trips = 1e12 its run never ends. The sum makes the Loop's start depend on the
 * input, so no optimizer can fold it away.
 */
export function loopingRewardModel(trips: bigint): Uint8Array {
  const i64 = new Uint8Array(8);
  new DataView(i64.buffer).setBigInt64(0, trips, true);
  const one = new Uint8Array(new Float32Array([1]).buffer);
  const body: Field[] = [
    [1, node('Identity', ['cond_in'], ['cond_out'])],
    [1, node('Add', ['v_in', 'one'], ['v_out'])],
    [2, 'body'],
    [11, valueInfo('i', 'int64', [])],
    [11, valueInfo('cond_in', 'bool', [])],
    [11, valueInfo('v_in', 'float', null)],
    [12, valueInfo('cond_out', 'bool', [])],
    [12, valueInfo('v_out', 'float', null)],
  ];
  const graph: Field[] = [
    [1, node('Cast', ['input_ids'], ['x'], [[[1, 'to'], [3, ELEM.float], [20, 2]]])],
    [1, node('ReduceSum', ['x'], ['s'])],
    [1, node('Loop', ['trips', 'cond', 's'], ['v'], [[[1, 'body'], [6, body], [20, 5]]])],
    [1, node('Identity', ['v'], ['logits'])],
    [2, 'looping-reward'],
    [5, scalar('trips', 'int64', i64)],
    [5, scalar('cond', 'bool', new Uint8Array([1]))],
    [5, scalar('one', 'float', one)],
    [11, valueInfo('input_ids', 'int64', ['batch', 'seq'])],
    [12, valueInfo('logits', 'float', [1, 1])],
  ];
  return message([[1, 8], [8, [[1, ''], [2, 17]]], [7, graph]]);
}
