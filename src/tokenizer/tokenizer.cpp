#include "tokenizer/tokenizer.h"

#include "common/error.h"
#include "tokenizer/bert_tokenizer.h"
#include "tokenizer/t5_tokenizer.h"

namespace peft {

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(dir / "spiece.model")) return std::make_unique<T5Tokenizer>(dir / "spiece.model");
  if (fs::is_regular_file(dir / "vocab.txt")) return std::make_unique<BertTokenizer>(dir / "vocab.txt");
  fail_input(where(dir.string()) + "no tokenizer found (expected spiece.model or vocab.txt)");
}

}  // namespace peft
