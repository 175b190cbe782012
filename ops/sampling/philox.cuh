// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator, so a draw is a pure function of (key, counter) and needs no state.
// The samplers key it with the seed and count with (round, row, offset), which makes every draw
// independent of the launch configuration.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fdops::sampling {

struct Philox4x32 {
  uint32_t v[4];
};

__host__ __device__ __forceinline__ void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi,
                                                        uint32_t* lo) {
#if defined(__CUDA_ARCH__)
  *hi = __umulhi(a, b);
  *lo = a * b;
#else
  const uint64_t product = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(product >> 32);
  *lo = static_cast<uint32_t>(product);
#endif
}

// Ten rounds; the key is bumped by the Weyl constants between rounds.
__host__ __device__ __forceinline__ Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t key0,
                                                             uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += kWeyl0;
      key1 += kWeyl1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kMul0, ctr.v[0], &hi0, &lo0);
    philox_mulhilo(kMul1, ctr.v[2], &hi1, &lo1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
  }
  return ctr;
}

// The uniform of rejection round `round` of `row`: the top 24 bits of the first Philox word,
// u = w / 2^24 in [0, 1) (exact in fp32). Counter (round, row, offset lo, offset hi), key seed.
__host__ __device__ __forceinline__ float sampling_uniform(uint64_t seed, uint64_t offset,
                                                           uint32_t row, uint32_t round) {
  const Philox4x32 out = philox4x32_10(
      Philox4x32{{round, row, static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)}},
      static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return static_cast<float>(out.v[0] >> 8) * 0x1p-24f;
}

}  // namespace fdops::sampling
