import Foundation

#if canImport(Glibc)
import Glibc
import PrometheusExposition
#endif

extension CanaryMetrics {
    /// Reads the standard `process_*` metrics from `/proc` (Linux; they stay empty elsewhere). Their families are
    /// defined with the others in `CanaryMetrics.swift`.
    func refreshProcessMetrics() {
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
                self.processCPUSeconds.set([], (utime + stime) / ticks)
                self.processResidentMemory.set([], (Double(fields[21]) ?? 0) * pageSize)
                if let boot = Self.bootTime() {
                    self.processStartTime.set([], boot + (Double(fields[19]) ?? 0) / ticks)
                }
            }
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            self.processOpenFDs.set([], Double(entries.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            self.processMaxFDs.set([], Double(limit.rlim_cur))
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
