// Incremental detokenization that never emits half a character. A byte-level BPE token can end inside a multi-byte
// UTF-8 sequence; decoding then yields U+FFFD until the next token completes it. We decode a short window of recent
// ids and emit only the text that is complete (the approach of text-generation-inference's decode_token).

export class StreamDecoder {
  #ids: number[] = [];
  #prefix = 0; // start of the window
  #read = 0;   // ids already emitted as text

  constructor(private readonly decode: (ids: number[]) => string) {}

  /** Adds a token and returns the newly completed text (possibly ''). */
  push(id: number): string {
    this.#ids.push(id);
    const before = this.decode(this.#ids.slice(this.#prefix, this.#read));
    const after = this.decode(this.#ids.slice(this.#prefix));
    if (after.length > before.length && !after.endsWith('\uFFFD')) {
      const text = after.slice(before.length);
      this.#prefix = this.#read;
      this.#read = this.#ids.length;
      return text;
    }
    return '';
  }

  /** Text still held back at the end (an incomplete character is emitted as U+FFFD). */
  flush(): string {
    const before = this.decode(this.#ids.slice(this.#prefix, this.#read));
    const after = this.decode(this.#ids.slice(this.#prefix));
    this.#prefix = this.#read = this.#ids.length;
    return after.slice(before.length);
  }
}
