import Foundation
import TestSupport
import Testing

/// The dashboard and alert rules: structure, and that the real tools accept them.
enum Dashboard {
    static let path = Harness.root.appendingPathComponent("Dashboards/s3-canary.json")

    struct Query {
        var row: String
        var panel: String
        var expr: String
    }

    static func load() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as? [String: Any])
    }

    /// Every panel expression with the dashboard's variables replaced as Grafana would for "All".
    static func queries() throws -> [Query] {
        var row = ""
        var out: [Query] = []
        for panel in (try load()["panels"] as? [[String: Any]]) ?? [] {
            if panel["type"] as? String == "row" {
                row = panel["title"] as? String ?? ""
                continue
            }
            for target in (panel["targets"] as? [[String: Any]]) ?? [] {
                guard let expr = target["expr"] as? String else { continue }
                let resolved = expr.replacingOccurrences(of: "$__rate_interval", with: "1m")
                    .replacingOccurrences(of: "$instance", with: ".*").replacingOccurrences(of: "$backend", with: ".*")
                    .replacingOccurrences(of: "$job", with: ".*")
                out.append(Query(row: row, panel: panel["title"] as? String ?? "", expr: resolved))
            }
        }
        return out
    }

    /// The panels of `rows` that returned no data from `prometheus`: a panel with a native and a classic target
    /// (latency) answers from whichever shape that Prometheus stored, so a panel needs one target with data.
    static func emptyPanels(in rows: [String], of prometheus: PrometheusServer) throws -> [String] {
        var answered: [String: Bool] = [:]
        for query in try Self.queries() where rows.contains(query.row) {
            let result = try prometheus.query(query.expr)
            answered[query.panel, default: false] = answered[query.panel, default: false] || !result.isEmpty
        }
        return answered.filter { !$0.value }.map(\.key).sorted()
    }
}

@Suite("On-call kit: alert rules and dashboard")
struct OnCallKitTests {
    static let rules = Harness.root.appendingPathComponent("Config/prometheus")

    /// Each rule file and its promtool unit tests: the fleet and threshold alerts, and the SLO burn-rate alerts.
    static let ruleFiles = [("alerts.yaml", "alerts_test.yaml"), ("slo.yaml", "slo_test.yaml")]

    @Test(arguments: Self.ruleFiles)
    func alertRulesAreCleanAndTheirUnitTestsPass(rules: String, tests: String) async throws {
        let check = try await Harness.runDetached(
            "/usr/bin/env", ["promtool", "check", "rules", Self.rules.appendingPathComponent(rules).path])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("SUCCESS"))
        // slo_test.yaml replays days of samples: about 35 s of promtool.
        let test = try await Harness.runDetached(
            "/usr/bin/env", ["promtool", "test", "rules", Self.rules.appendingPathComponent(tests).path])
        #expect(test.status == 0, "\(test.stdout)\(test.stderr)")
        #expect(test.stdout.contains("SUCCESS"))
    }

    @Test(arguments: Self.ruleFiles)
    func everyAlertIsTestedFiringAndNotFiring(rulesFile: String, testsFile: String) throws {
        let rules = try String(contentsOf: Self.rules.appendingPathComponent(rulesFile), encoding: .utf8)
        let tests = try String(contentsOf: Self.rules.appendingPathComponent(testsFile), encoding: .utf8)
        let alerts = rules.components(separatedBy: "- alert: ").dropFirst().compactMap {
            $0.split(separator: "\n").first.map(String.init)
        }
        #expect(alerts.count >= 4)
        for alert in alerts {
            let cases = tests.components(separatedBy: "alertname: \(alert)\n").dropFirst()
            #expect(
                cases.contains { $0.hasPrefix("  eval_time") || $0.contains("exp_alerts: []") },
                "\(alert) lacks a not-firing case")
            #expect(cases.contains { !$0.prefix(80).contains("exp_alerts: []") }, "\(alert) lacks a firing case")
            #expect(rules.contains("runbook.md#\(alert.lowercased())"))
        }
        let runbook = try String(contentsOf: Harness.root.appendingPathComponent("docs/runbook.md"), encoding: .utf8)
        for alert in alerts {
            #expect(runbook.contains("## \(alert)"), "docs/runbook.md has no section for \(alert)")
        }
    }

    @Test func dashboardIsStructurallySound() throws {
        let dashboard = try Dashboard.load()
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(dashboard["uid"] as? String == "s3-canary")
        let variables =
            ((dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]])?.compactMap {
                $0["name"] as? String
            } ?? []
        #expect(Set(["datasource", "instance", "backend"]).isSubset(of: Set(variables)))
        var ids = Set<Int>()
        for panel in panels {
            let id = try #require(panel["id"] as? Int)
            #expect(ids.insert(id).inserted, "duplicate panel id \(id)")
            let grid = try #require(panel["gridPos"] as? [String: Int])
            let (x, w, h, y) = (grid["x"] ?? -1, grid["w"] ?? 0, grid["h"] ?? 0, grid["y"] ?? -1)
            #expect(x >= 0 && w > 0 && h > 0 && y >= 0 && x + w <= 24, "panel \(id) gridPos \(grid)")
            guard panel["type"] as? String != "row" else { continue }
            #expect(
                !(panel["description"] as? String ?? "").isEmpty, "panel \(panel["title"] ?? id) has no description")
            let targets = panel["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty)
            for target in targets {
                let datasource = target["datasource"] as? [String: String]
                #expect(
                    datasource?["uid"] == "${datasource}",
                    "a target of \(panel["title"] ?? id) has no datasource variable")
            }
        }
        let rows = panels.filter { $0["type"] as? String == "row" }.compactMap { $0["title"] as? String }
        #expect(
            rows == [
                "Overview", "SLO", "Latency", "Errors", "Compatibility", "Circuit breaker", "TLS and credentials",
                "Webhooks", "Process", "Data durability",
            ])
    }
}
