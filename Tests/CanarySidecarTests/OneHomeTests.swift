import Foundation
import PrometheusExposition
import Testing

@testable import SidecarConfig
@testable import SidecarServer
@testable import SidecarTelemetry

/// Every contract has one home: a route path, a metric name or an event name is spelled in one non-test source
/// file, so a reader finds it by grepping once and a rename cannot miss a copy. Comments do not count.
@Suite("One home per contract")
struct OneHomeTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    /// Every Swift file under Sources/, with its comments removed.
    static func code() throws -> [(file: String, text: String)] {
        let enumerator = try #require(FileManager.default.enumerator(at: Self.sources, includingPropertiesForKeys: nil))
        var files: [(String, String)] = []
        for case let url as URL in enumerator where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            let code = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
                // A comment starts at `//` at the start of a line or after a space (a URL's `://` is not one).
                if let range = line.range(of: #"(^|\s)//"#, options: .regularExpression) {
                    return line[..<range.lowerBound]
                }
                return line
            }.joined(separator: "\n")
            files.append((url.path.replacingOccurrences(of: Self.sources.path + "/", with: ""), code))
        }
        #expect(files.count > 40, "found the sources")
        return files
    }

    /// The files whose code spells `token` as a whole (not as part of a longer name or path).
    static func files(spelling token: String, in code: [(file: String, text: String)]) -> [String] {
        let escaped = NSRegularExpression.escapedPattern(for: token)
        let pattern = "(?<![A-Za-z0-9_./-])\(escaped)(?![A-Za-z0-9_-])"
        return code.filter { $0.text.range(of: pattern, options: .regularExpression) != nil }.map(\.file).sorted()
    }

    @Test func everyMetricNameIsSpelledInOneFile() throws {
        let code = try Self.code()
        let metrics = try CanaryMetrics(version: "test")
        var names = Set(metrics.registry.familyNames)
        names.formUnion(["s3canary_probe_operation_duration_seconds", "s3canary_probe_operation_success"])
        #expect(names.count > 25)
        for name in names.sorted() {
            let files = Self.files(spelling: name, in: code)
            #expect(files == ["SidecarTelemetry/CanaryMetrics.swift"], "\(name) is spelled in \(files)")
        }
    }

    @Test func everyEventNameIsSpelledInOneFile() throws {
        let code = try Self.code()
        for event in WebhookEventType.allCases {
            let files = Self.files(spelling: event.rawValue, in: code)
            #expect(files == ["SidecarConfig/EventType.swift"], "\(event.rawValue) is spelled in \(files)")
        }
    }

    @Test func everyRoutePathIsSpelledInOneFile() throws {
        let code = try Self.code()
        // `/` alone is every URL's separator: its route is checked through the table's own spelling below.
        for route in Route.allCases where route != .statusPage {
            let files = Self.files(spelling: route.path, in: code)
            #expect(files == ["SidecarServer/Route.swift"], "\(route.path) is spelled in \(files)")
        }
        #expect(Self.files(spelling: #"case statusPage = "/""#, in: code) == ["SidecarServer/Route.swift"])
    }
}
