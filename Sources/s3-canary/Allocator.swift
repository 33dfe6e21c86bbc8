#if canImport(Glibc)
import Glibc
#endif

/// glibc's allocator tuned for a long-running sidecar.
enum Allocator {
    /// Serves every block of 256 KiB or more from its own mapping, returned to the system when freed.
    ///
    /// A scrape of a thousand backends renders megabytes of exposition once a second per format. glibc starts by
    /// mapping such blocks, but after the first one is freed it raises its threshold (up to 32 MiB) and serves the
    /// next ones from the heap, where they stay as resident memory the heap cannot give back around live blocks:
    /// measured with 1,000 demo backends scraped in text and gzip, 110 MiB resident with the moving threshold and
    /// 79 MiB with it fixed (bench/REPORT.md has the figures of each run). An operator's `MALLOC_MMAP_THRESHOLD_`
    /// wins.
    static func keepLargeBlocksOutOfTheHeap() {
        #if canImport(Glibc)
        guard getenv("MALLOC_MMAP_THRESHOLD_") == nil else { return }
        // `mallopt` is in <malloc.h>, which the Glibc module does not export: looked up by name (RTLD_DEFAULT is
        // a null handle in glibc); M_MMAP_THRESHOLD is -3 there.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: Mallopt.self)(-3, 256 * 1024)
        #endif
    }
}
