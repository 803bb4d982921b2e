// Bridge from the tokenizer module to data's TokenCodec.
#pragma once
#include "data/prompt.h"
#include "tokenizer/tokenizer.h"

namespace peft::data {

// The codec keeps a reference: `tokenizer` must outlive it.
TokenCodec codec_from(const peft::Tokenizer& tokenizer);

}  // namespace peft::data
