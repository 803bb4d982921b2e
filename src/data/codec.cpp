#include "data/codec.h"

namespace peft::data {

TokenCodec codec_from(const peft::Tokenizer& tokenizer) {
  TokenCodec c;
  c.encode = [&tokenizer](const std::string& text) { return tokenizer.encode(text); };
  c.pad_id = tokenizer.pad_id();
  c.eos_id = tokenizer.eos_id();
  c.fingerprint = tokenizer.fingerprint();
  return c;
}

}  // namespace peft::data
