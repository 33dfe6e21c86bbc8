import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` metrics, read from `/proc` at scrape time (Linux; absent elsewhere).
final class ProcessMetrics: Sendable {
    let residentMemory: MetricFamily
    let cpuSeconds: MetricFamily
    let openFDs: MetricFamily
    let maxFDs: MetricFamily
    let startTime: MetricFamily

    init(registry: MetricsRegistry) throws {
        self.residentMemory = try registry.family(
            "process_resident_memory_bytes", help: "Resident memory size in bytes.", kind: .gauge)
        self.cpuSeconds = try registry.family(
            "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", kind: .counter)
        self.openFDs = try registry.family("process_open_fds", help: "Number of open file descriptors.", kind: .gauge)
        self.maxFDs = try registry.family(
            "process_max_fds", help: "Maximum number of open file descriptors.", kind: .gauge)
        self.startTime = try registry.family(
            "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.",
            kind: .gauge)
        self.refresh()
    }

    func refresh() {
        #if os(Linux)
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        {
            // Fields after the command name, which may itself contain spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // fields[0] is field 3 (state); utime is field 14, stime 15, starttime 22, rss 24.
            if fields.count > 21, ticks > 0 {
                let utime = Double(fields[11]) ?? 0
                let stime = Double(fields[12]) ?? 0
                self.cpuSeconds.set([], (utime + stime) / ticks)
                self.residentMemory.set([], (Double(fields[21]) ?? 0) * pageSize)
                if let boot = Self.bootTime() {
                    self.startTime.set([], boot + (Double(fields[19]) ?? 0) / ticks)
                }
            }
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            self.openFDs.set([], Double(entries.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            self.maxFDs.set([], Double(limit.rlim_cur))
        }
        #endif
    }

    static func bootTime() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
