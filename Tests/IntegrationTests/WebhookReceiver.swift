import Foundation
import TestSupport

/// The Python receiver of `Tests/Fixtures/webhook_receiver.py`, which verifies every delivery with the
/// `standardwebhooks`, `cloudevents` and `jsonschema` packages and logs it as a JSON line.
final class WebhookReceiver: @unchecked Sendable {
    struct Delivery {
        var path: String
        var headers: [String: String]
        var body: String
        var status: Int
        var attempt: Int
        var time: Double
        var standardWebhooksOK: Bool
        var hmacOK: Bool
        var cloudEventOK: Bool?
        var schemaOK: Bool?
        var schemaError: String?
        var id: String { self.headers["webhook-id"] ?? "" }
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(self.body.utf8)) as? [String: Any]) ?? [:]
        }
    }

    let port: Int
    let secret: String
    let log: URL
    private var daemon: Daemon?

    init(directory: URL, port: Int? = nil, secret: String? = nil) throws {
        self.port = try port ?? Harness.freePort()
        var random = Data(count: 24)
        for index in 0..<24 { random[index] = UInt8.random(in: 0...255) }
        self.secret = secret ?? "whsec_" + random.base64EncodedString()
        self.log = directory.appendingPathComponent("webhooks-\(self.port).jsonl")
    }

    var base: String { "http://127.0.0.1:\(self.port)" }

    func start() async throws {
        let daemon = try Daemon(
            "/usr/bin/env",
            [
                "python3", Harness.root.appendingPathComponent("Tests/Fixtures/webhook_receiver.py").path,
                String(self.port), self.log.path, self.secret,
            ],
            log: self.log.deletingPathExtension().appendingPathExtension("out")
        )
        self.daemon = daemon
        try await Harness.waitForPort(self.port, of: daemon, "webhook receiver", timeout: .seconds(15))
    }

    func stop() {
        self.daemon?.signal(SIGKILL)
    }

    var deliveries: [Delivery] {
        guard let text = try? String(contentsOf: self.log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                return nil
            }
            return Delivery(
                path: object["path"] as? String ?? "",
                headers: object["headers"] as? [String: String] ?? [:],
                body: object["body"] as? String ?? "",
                status: object["status"] as? Int ?? 0,
                attempt: object["attempt"] as? Int ?? 0,
                time: object["time"] as? Double ?? 0,
                standardWebhooksOK: object["standard_webhooks_ok"] as? Bool ?? false,
                hmacOK: object["hmac_ok"] as? Bool ?? false,
                cloudEventOK: object["cloudevent_ok"] as? Bool,
                schemaOK: object["schema_ok"] as? Bool,
                schemaError: object["schema_error"] as? String
            )
        }
    }

    func deliveries(path: String) -> [Delivery] { self.deliveries.filter { $0.path == path } }
}

/// The event type a delivery carries, whatever its format.
func eventKind(_ delivery: WebhookReceiver.Delivery) -> String {
    let json = delivery.json
    if let type = json["type"] as? String { return type }
    if let status = json["status"] as? String {
        return status == "firing" ? "backend.circuit.opened" : "backend.circuit.closed"
    }
    if let action = json["event_action"] as? String {
        return action == "trigger" ? "backend.circuit.opened" : "backend.circuit.closed"
    }
    if let text = json["text"] as? String {
        if text.contains("circuit breaker opened") { return "backend.circuit.opened" }
        if text.contains("circuit breaker closed") { return "backend.circuit.closed" }
        if text.contains("half-open") { return "backend.circuit.half_opened" }
        if text.contains("started") { return "service.started" }
        if text.contains("stopping") { return "service.stopping" }
    }
    return "unknown"
}
