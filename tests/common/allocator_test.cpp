#include "common/allocator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace peft {
namespace {

#if defined(__GLIBC__)
// Bytes glibc holds in mmapped blocks while a 48 MB block is allocated (above the 32 MB that glibc's own
// dynamic threshold can reach, so by default it is always mmapped).
size_t mmapped_bytes_while_holding_48_mb() {
  constexpr size_t kBytes = size_t{48} << 20;
  const size_t before = mallinfo2().hblkhd;
  char* volatile p = static_cast<char*>(std::malloc(kBytes));  // volatile: the pair must not be optimised out
  std::memset(p, 1, 4096);
  const size_t during = mallinfo2().hblkhd;
  std::free(p);
  return during - before;
}

// Defined first, so it runs before the test below changes the setting for the rest of the process.
TEST(Allocator, UserMallocTunablesAreLeftAlone) {
  setenv("GLIBC_TUNABLES", "glibc.malloc.perturb=0", 1);
  keep_freed_memory_mapped();
  unsetenv("GLIBC_TUNABLES");
  EXPECT_GE(mmapped_bytes_while_holding_48_mb(), size_t{48} << 20);  // still glibc's default: an mmap
}

TEST(Allocator, LargeBlocksComeFromTheHeapOnceSetAndStayUntilReturned) {
  keep_freed_memory_mapped();
  EXPECT_EQ(mmapped_bytes_while_holding_48_mb(), 0u);
  // The freed 48 MB stay in the heap (below the 512 MB trim threshold) until return_free_memory.
  const size_t kept = mallinfo2().arena;
  EXPECT_GE(kept, size_t{48} << 20);
  return_free_memory();
  EXPECT_LE(mallinfo2().arena + (size_t{40} << 20), kept);
}
#endif

}  // namespace
}  // namespace peft
