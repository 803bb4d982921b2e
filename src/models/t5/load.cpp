#include "models/t5/load.h"

#include "common/error.h"

namespace peft {

T5ForConditionalGeneration load_t5(const io::HfCheckpoint& checkpoint) {
  const std::string config_source = (checkpoint.dir / "config.json").string();
  const T5Config config = T5Config::from_json(checkpoint.config, config_source);
  T5ForConditionalGeneration model(config);

  // Aliases of tensors that exist once in our module: keep shared.weight, drop its copies.
  io::TensorMap tensors = checkpoint.tensors;
  if (!tensors.count("shared.weight")) {
    for (const char* alias : {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}) {
      auto it = tensors.find(alias);
      if (it != tensors.end()) {
        tensors["shared.weight"] = it->second;
        break;
      }
    }
  }
  tensors.erase("encoder.embed_tokens.weight");
  tensors.erase("decoder.embed_tokens.weight");
  if (config.tie_word_embeddings) tensors.erase("lm_head.weight");  // same tensor as shared.weight

  // HF ignores this one too (_keys_to_ignore_on_load_unexpected): some old checkpoints carry a bias that the
  // cross-attention never uses.
  const std::vector<std::string> ignore = {"decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"};
  io::load_weights(*model, tensors, checkpoint.dir.string(), ignore);
  return model;
}

}  // namespace peft
