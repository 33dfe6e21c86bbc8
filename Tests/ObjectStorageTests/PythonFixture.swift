import Foundation
import TestSupport
import Testing

/// Runs `Fixtures/<script>` with python3, `input` on its stdin, and returns its stdout: the botocore references of
/// the signer and feature tests. A failing script fails the test with its stderr.
func runPythonFixture(_ script: String, arguments: [String] = [], input: Data) throws -> Data {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(script)")
    let output = try Harness.run("/usr/bin/env", ["python3", path.path] + arguments, stdin: input)
    try #require(output.status == 0, "\(script) failed (scripts/test.sh installs boto3): \(output.stderr)")
    return Data(output.stdout.utf8)
}
