/** Shared by the simulators whose uploads are multipart/form-data (X media APPEND, Pinterest's S3 form). */
/**
 * A streaming multipart/form-data parser: part headers are buffered (they are small), part bodies
 * pass through as they arrive, holding back only enough bytes to recognise a boundary split across
 * chunks.
 */
export class MultipartParser {
  onPart: (headers: Record<string, string>) => void = () => undefined;
  onData: (data: Buffer) => void = () => undefined;
  onPartEnd: () => void = () => undefined;
  done = false;
  private readonly delimiter: Buffer;
  private state: 'preamble' | 'afterBoundary' | 'headers' | 'body' | 'end' = 'preamble';
  private carry: Buffer;

  /** Each platform answers a malformed body in its own error shape. */
  private readonly malformed: (message: string) => Error;

  constructor(boundary: string, malformed: (message: string) => Error) {
    this.malformed = malformed;
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
    // The first boundary has no CRLF before it; pretend it does.
    this.carry = Buffer.from('\r\n');
  }

  write(chunk: Buffer): void {
    let buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = Buffer.alloc(0);
    for (;;) {
      if (this.state === 'preamble') {
        const at = buf.indexOf(this.delimiter);
        if (at < 0) {
          this.carry = buf.subarray(Math.max(0, buf.length - this.delimiter.length + 1));
          return;
        }
        buf = buf.subarray(at + this.delimiter.length);
        this.state = 'afterBoundary';
      } else if (this.state === 'afterBoundary') {
        if (buf.length < 2) {
          this.carry = buf;
          return;
        }
        const next = buf.subarray(0, 2).toString('latin1');
        if (next === '--') {
          this.state = 'end';
          this.done = true;
          return;
        }
        if (next !== '\r\n') throw this.malformed('Malformed multipart boundary');
        buf = buf.subarray(2);
        this.state = 'headers';
      } else if (this.state === 'headers') {
        const at = buf.indexOf('\r\n\r\n');
        if (at < 0) {
          if (buf.length > 16 * 1024) throw this.malformed('Multipart part headers too long');
          this.carry = buf;
          return;
        }
        const headers: Record<string, string> = {};
        for (const line of buf.subarray(0, at).toString('latin1').split('\r\n')) {
          const colon = line.indexOf(':');
          if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        this.onPart(headers);
        buf = buf.subarray(at + 4);
        this.state = 'body';
      } else if (this.state === 'body') {
        const at = buf.indexOf(this.delimiter);
        if (at < 0) {
          const safe = Math.max(0, buf.length - this.delimiter.length + 1);
          if (safe > 0) this.onData(buf.subarray(0, safe));
          this.carry = buf.subarray(safe);
          return;
        }
        if (at > 0) this.onData(buf.subarray(0, at));
        this.onPartEnd();
        buf = buf.subarray(at + this.delimiter.length);
        this.state = 'afterBoundary';
      } else {
        return;
      }
    }
  }
}
