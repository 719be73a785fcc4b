// A tokenizer.json that fits a tiny test model: a character-level BPE (no merges) with `vocab` ids, <unk>/<s>/</s> as
// 0/1/2 and then printable characters. Real tokenizers have tens of thousands of ids, more than tiny models embed.

export function tinyTokenizerJson(vocab: number): Uint8Array {
  const entries: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let id = 3, c = 0x61; id < vocab; id++, c++) entries[String.fromCharCode(c)] = id;
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: ['<unk>', '<s>', '</s>'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: entries, merges: [] },
  };
  return new TextEncoder().encode(JSON.stringify(json));
}
