import Foundation
import ObjectStorage
import PrometheusExposition
import Testing

@testable import SidecarBreaker
@testable import SidecarCanary
@testable import SidecarTelemetry

@Suite("Addresses on the status board and in the metrics")
struct NetworkStatusTests {
    static let answer = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]

    static func cycle(_ up: [Bool], answer: [String] = Self.answer) -> CycleResult {
        var set = AddressSet()
        set.resolution = NameResolution(addresses: answer, ttl: .seconds(30), server: "10.0.0.53:53")
        set.results = zip(answer, up).map { address, up in
            AddressResult(
                address: address, status: up ? .success : .failure,
                failure: up ? nil : FailureSummary(operation: "put", reason: .tls, message: "TLS handshake timed out"),
                phase: up ? nil : .tls)
        }
        var result = CycleResult(
            backend: "b", startedAt: Date(), duration: .milliseconds(5),
            status: up.contains(true) ? .success : .failure,
            steps: [], integrityFailure: false)
        result.addresses = set
        return result
    }

    @Test func anAddressChangeIsReportedOnceEachWayAndAFirstSuccessIsNot() {
        let board = StatusBoard()
        board.setBackends(["b"])
        #expect(board.record(Self.cycle([true, true, true])).changes.isEmpty, "a first success is no news")
        let failing = board.record(Self.cycle([true, false, true])).changes
        #expect(failing.map(\.address) == ["10.0.0.2"] && failing.first?.up == false)
        #expect(failing.first?.failure?.reason == .tls)
        #expect(board.record(Self.cycle([true, false, true])).changes.isEmpty, "still failing is no news")
        let network = board.backends[0].network
        #expect(network.isDegraded && !network.certificatesDiffer)
        #expect(network.addresses[1].lastError?.phase == .tls)
        let recovered = board.record(Self.cycle([true, true, true])).changes
        #expect(recovered.map(\.address) == ["10.0.0.2"] && recovered.first?.up == true)
        #expect(!board.backends[0].network.isDegraded)
    }

    @Test func aFirstFailureIsNewsAndEveryAddressFailingIsNotDegraded() {
        let board = StatusBoard()
        board.setBackends(["b"])
        let changes = board.record(Self.cycle([false, false, false])).changes
        #expect(changes.count == 3 && changes.allSatisfy { !$0.up })
        #expect(!board.backends[0].network.isDegraded)
    }

    @Test func anotherAnswerIsReportedAndTheAddressesItLacksGo() {
        let board = StatusBoard()
        board.setBackends(["b"])
        #expect(board.record(Self.cycle([true, true, true])).answer == nil, "the first answer is no change")
        let update = board.record(Self.cycle([true, true], answer: ["10.0.0.1", "10.0.0.4"]))
        #expect(update.answer?.old == Self.answer && update.answer?.new == ["10.0.0.1", "10.0.0.4"])
        #expect(board.backends[0].network.addresses.map(\.address) == ["10.0.0.1", "10.0.0.4"])
    }

    @Test func addressSeriesFollowTheAnswerAndTLSSessionsStayOnePerAddress() throws {
        let metrics = try CanaryMetrics(version: "test")
        metrics.record(Self.cycle([true, false, true]))
        var text = metrics.renderText(format: .text004)
        #expect(text.contains(#"s3canary_address_up{backend="b",address="10.0.0.2",family="ipv4"} 0"#))
        #expect(text.contains(#"s3canary_address_up{backend="b",address="10.0.0.3",family="ipv4"} 1"#))
        metrics.record(Self.cycle([true], answer: ["10.0.0.1"]))
        text = metrics.renderText(format: .text004)
        #expect(!text.contains(#"address="10.0.0.2""#) && !text.contains(#"address="10.0.0.3""#))

        func trace(_ address: String, _ version: String, fingerprint: String = "aa") -> RequestTrace {
            RequestTrace(
                operation: "PutObject", label: "put", address: address, phases: [], failedPhase: nil,
                tls: TLSSessionInfo(
                    version: version, cipher: "TLS_AES_128_GCM_SHA256", fingerprint: fingerprint, notAfter: nil),
                newConnection: true)
        }
        metrics.record(trace("10.0.0.1", "TLSv1.2"), backend: "b", answer: ["10.0.0.1", "10.0.0.2"])
        metrics.record(trace("10.0.0.2", "TLSv1.3"), backend: "b", answer: ["10.0.0.1", "10.0.0.2"])
        metrics.record(trace("10.0.0.1", "TLSv1.3"), backend: "b", answer: ["10.0.0.1", "10.0.0.2"])
        text = metrics.renderText(format: .text004)
        #expect(text.components(separatedBy: "s3canary_tls_info{").count - 1 == 2)
        #expect(!text.contains(#"version="TLSv1.2""#))
        // The answer moved on: a session of an address it lacks goes with the next session recorded.
        metrics.record(trace("10.0.0.9", "TLSv1.3"), backend: "b", answer: ["10.0.0.9"])
        text = metrics.renderText(format: .text004)
        #expect(text.components(separatedBy: "s3canary_tls_info{").count - 1 == 1)
        #expect(text.contains(#"s3canary_tls_info{backend="b",address="10.0.0.9""#))
    }

    @Test func differentCertificatesAreFlagged() {
        var network = NetworkStatus()
        for (address, fingerprint) in [("10.0.0.1", "aa"), ("10.0.0.2", "aa"), ("10.0.0.3", "bb")] {
            _ = network.record(
                RequestTrace(
                    operation: "GetObject", label: "get", address: address, phases: [], failedPhase: nil,
                    tls: TLSSessionInfo(version: "TLSv1.3", cipher: "x", fingerprint: fingerprint, notAfter: nil),
                    newConnection: true),
                at: Date())
            #expect(network.certificatesDiffer == (address == "10.0.0.3"))
        }
    }
}
