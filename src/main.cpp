#include "cli/app.h"
#include "common/allocator.h"

int main(int argc, char** argv) {
  peft::keep_freed_memory_mapped();  // before any tensor is allocated
  return peft::cli::run(argc, argv);
}
