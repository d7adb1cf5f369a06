// The caching allocator and copies of kernels/cuda/cuda_memory.h.
#include <cstdio>
#include <map>
#include <mutex>
#include <unordered_map>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_memory.h"
#include "kernels/cuda/cuda_stream.h"

namespace {

const size_t small_granule = 512, large_granule = (size_t)1 << 20;

struct cache {
    std::mutex lock;
    std::multimap<size_t, void *> free_blocks;   // size -> block, for best fit
    std::unordered_map<void *, size_t> in_use;  // block -> size
    ct_cuda_memory_stats stats = {};
};

cache &the_cache() {
    static cache *c = new cache;  // never destroyed: blocks may be freed during exit
    return *c;
}

size_t rounded_size(size_t nbytes) {
    size_t granule = nbytes < large_granule ? small_granule : large_granule;
    if (nbytes == 0) nbytes = 1;
    return (nbytes + granule - 1) / granule * granule;
}

void note_in_use(cache &c, void *p, size_t size) {
    c.in_use.emplace(p, size);
    c.stats.in_use_bytes += size;
    if (c.stats.in_use_bytes > c.stats.peak_in_use_bytes) c.stats.peak_in_use_bytes = c.stats.in_use_bytes;
    if (c.stats.reserved_bytes > c.stats.peak_reserved_bytes) c.stats.peak_reserved_bytes = c.stats.reserved_bytes;
}

// The smallest cached block that fits and wastes at most a quarter, removed from the cache.
void *take_cached(cache &c, size_t size, size_t *got) {
    auto it = c.free_blocks.lower_bound(size);
    if (it == c.free_blocks.end() || it->first > size + size / 4) return NULL;
    void *p = it->second;
    *got = it->first;
    c.free_blocks.erase(it);
    return p;
}

// Returns the cached blocks to the driver; the caller holds the lock.
int release_cached(cache &c) {
    int status = 0;
    for (auto &entry : c.free_blocks) {
        cudaError_t e = cudaFree(entry.second);
        if (e != cudaSuccess && status == 0)
            status = ct_fail("CUDA: cudaFree failed at %s:%d: %s", __FILE__, __LINE__, cudaGetErrorString(e));
        c.stats.reserved_bytes -= entry.first;
        c.stats.free_calls++;
    }
    c.free_blocks.clear();
    return status;
}

}  // namespace

extern "C" int ct_cuda_device_count(void) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no device" error so later calls report their own
        return 0;
    }
    return count;
}

extern "C" int ct_cuda_device_describe(char *buf, size_t size) {
    int device = 0;
    cudaDeviceProp prop;
    CT_CUDA_CHECK(cudaGetDevice(&device));
    CT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    snprintf(buf, size, "%s, sm_%d%d, %.1f GiB", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 0;
}

extern "C" void *ct_cuda_alloc(size_t nbytes) {
    cache &c = the_cache();
    std::lock_guard<std::mutex> guard(c.lock);
    size_t size = rounded_size(nbytes), got = 0;
    void *p = take_cached(c, size, &got);
    if (p) {
        c.stats.reuses++;
        note_in_use(c, p, got);
        return p;
    }
    cudaError_t status = cudaMalloc(&p, size);
    if (status == cudaErrorMemoryAllocation && !c.free_blocks.empty()) {
        cudaGetLastError();
        release_cached(c);
        status = cudaMalloc(&p, size);
    }
    if (status != cudaSuccess) {
        size_t free_bytes = 0, total_bytes = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_bytes, &total_bytes);
        ct_fail("CUDA: out of memory asking %zu bytes (%zu free of %zu; %zu in use by ctune): %s at %s:%d; "
                "lower the batch size or sequence length, or turn on gradient checkpointing",
                nbytes, free_bytes, total_bytes, c.stats.in_use_bytes, cudaGetErrorString(status), __FILE__,
                __LINE__);
        return NULL;
    }
    c.stats.malloc_calls++;
    c.stats.reserved_bytes += size;
    note_in_use(c, p, size);
    return p;
}

extern "C" void ct_cuda_free(void *p) {
    if (!p) return;
    cache &c = the_cache();
    std::lock_guard<std::mutex> guard(c.lock);
    auto it = c.in_use.find(p);
    if (it == c.in_use.end()) {
        ct_fail("CUDA: ct_cuda_free of %p, which ct_cuda_alloc did not return (double free?)", p);
        return;
    }
    c.stats.in_use_bytes -= it->second;
    c.free_blocks.emplace(it->second, p);
    c.in_use.erase(it);
}

extern "C" ct_cuda_memory_stats ct_cuda_memory_get_stats(void) {
    cache &c = the_cache();
    std::lock_guard<std::mutex> guard(c.lock);
    return c.stats;
}

extern "C" void ct_cuda_memory_reset_peak(void) {
    cache &c = the_cache();
    std::lock_guard<std::mutex> guard(c.lock);
    c.stats.peak_in_use_bytes = c.stats.in_use_bytes;
    c.stats.peak_reserved_bytes = c.stats.reserved_bytes;
}

extern "C" int ct_cuda_memory_release_all(void) {
    cache &c = the_cache();
    std::lock_guard<std::mutex> guard(c.lock);
    // cudaFree waits for the device first, so no queued kernel still uses a block returned here
    return release_cached(c);
}

extern "C" int ct_cuda_memset_zero(void *p, size_t nbytes) {
    cudaStream_t stream;
    CT_TRY(ct_cuda_stream_get(&stream));
    CT_CUDA_CHECK(cudaMemsetAsync(p, 0, nbytes, stream));
    return 0;
}

extern "C" int ct_cuda_copy(void *dst, const void *src, size_t nbytes, int kind) {
    static const cudaMemcpyKind kinds[3] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                                            cudaMemcpyDeviceToDevice};
    if (kind < 0 || kind > 2) return ct_fail("CUDA: copy kind %d (expected 0, 1 or 2)", kind);
    if (nbytes == 0) return 0;
    cudaStream_t stream;
    CT_TRY(ct_cuda_stream_get(&stream));
    CT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kinds[kind], stream));
    // the host side may be reused or read as soon as this returns
    if (kind != 2) CT_CUDA_CHECK(cudaStreamSynchronize(stream));
    return 0;
}

extern "C" int ct_cuda_synchronize(void) {
    CT_CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
}
