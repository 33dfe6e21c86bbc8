import Foundation
import Logging
import Synchronization
import Testing

@testable import CanarySidecar

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test func aLineIsOneSortedEscapedObjectWithAUTCTimestamp() throws {
        let lines = Mutex<[String]>([])
        var handler = JSONLogHandler(
            label: "s3-canary",
            now: { Date(timeIntervalSince1970: 1_795_600_000.5) },
            write: { bytes in lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } }
        )
        handler.metadata["canary.backend"] = "ceph-a"
        let logger = Logger(label: "s3-canary", factory: { _ in handler })
        logger.notice(
            "circuit breaker closed -> open", metadata: ["breaker.last_error": "put http5xx: \"boom\"\nline\t2 /path"])
        #expect(
            lines.withLock { $0 } == [
                #"""
                {"breaker.last_error":"put http5xx: \"boom\"\nline\t2 /path","canary.backend":"ceph-a",\#
                "level":"notice","logger":"s3-canary","msg":"circuit breaker closed -> open",\#
                "ts":"2026-11-25T09:46:40.500Z"}\#n
                """#
            ]
        )
        let parsed = try JSONSerialization.jsonObject(with: Data(lines.withLock { $0[0] }.utf8)) as? [String: String]
        #expect(parsed?["breaker.last_error"] == "put http5xx: \"boom\"\nline\t2 /path")
    }

    @Test(arguments: [
        (0.0, "1970-01-01T00:00:00.000Z"), (951_782_400.25, "2000-02-29T00:00:00.250Z"),
        (-0.5, "1969-12-31T23:59:59.500Z"),
    ])
    func timestamps(seconds: Double, text: String) {
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: seconds)) == text)
    }
}
