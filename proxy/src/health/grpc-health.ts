// grpc.health.v1 on the wire, by hand (the messages are one field each; no protobuf library on the probe path):
//
//   message HealthCheckRequest  { string service = 1; }
//   message HealthCheckResponse { enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
//                                 ServingStatus status = 1; }
//
// A gRPC message is framed as 1 byte compressed-flag, 4 bytes big-endian length, then the protobuf bytes. Pure:
// what the backend sent is parsed here, and everything it could send wrong is an error string, never a throw.

export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';

export const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
  return out;
}

/** The framed HealthCheckRequest for `service` ("" asks about the whole server: an empty message). */
export function encodeHealthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const msg = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, ...varint(name.length)]), name]);
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(msg.length, 1);
  return Buffer.concat([frame, msg]);
}

/** Reads a varint at `at`: [value, next offset], or undefined when it runs past the end or past 2^49. */
function readVarint(b: Buffer, at: number): [number, number] | undefined {
  let v = 0;
  let mul = 1;
  for (let i = at; i < b.length && i < at + 7; i++) {
    const byte = b[i] as number;
    v += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return [v, i + 1];
    mul *= 128;
  }
  return undefined;
}

/**
 * The serving status in a framed HealthCheckResponse body, or an error saying what is wrong with it. Unknown
 * fields are skipped (a newer server may add some); a missing status is UNKNOWN (protobuf's default).
 */
export function decodeHealthResponse(body: Buffer): { status: string } | { error: string } {
  if (body.length < 5) return { error: `the health response is not a gRPC message (${body.length} bytes)` };
  if (body[0] !== 0) return { error: body[0] === 1 ? 'the health response is compressed, though none was offered' : `the health response has an invalid frame flag ${body[0] as number}` };
  const len = body.readUInt32BE(1);
  if (len !== body.length - 5) return { error: `the health response frame says ${len} bytes but carries ${body.length - 5}` };
  const msg = body.subarray(5);
  let status = 0;
  let at = 0;
  while (at < msg.length) {
    const tag = readVarint(msg, at);
    if (tag === undefined) return { error: 'the health response is not valid protobuf (truncated field tag)' };
    const [key, afterTag] = tag;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    at = afterTag;
    if (wire === 0) {
      const v = readVarint(msg, at);
      if (v === undefined) return { error: 'the health response is not valid protobuf (truncated varint)' };
      if (field === 1) status = v[0];
      at = v[1];
    } else if (wire === 2) {
      const l = readVarint(msg, at);
      if (l === undefined || l[1] + l[0] > msg.length) return { error: 'the health response is not valid protobuf (truncated bytes field)' };
      at = l[1] + l[0];
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else return { error: `the health response is not valid protobuf (wire type ${wire})` };
    if (field === 0) return { error: 'the health response is not valid protobuf (field number 0)' };
  }
  if (at > msg.length) return { error: 'the health response is not valid protobuf (truncated fixed field)' };
  return { status: SERVING_STATUS[status] ?? `status ${status}` };
}
