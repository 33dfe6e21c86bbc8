import Foundation
import Testing

/// Runs `Fixtures/<script>` with python3, `input` on its stdin, and returns its stdout: the botocore references of
/// the signer and feature tests. A failing script fails the test with its stderr.
func runPythonFixture(_ script: String, arguments: [String] = [], input: Data) throws -> Data {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(script)")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", path.path] + arguments
    let stdin = Pipe()
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    stdin.fileHandleForWriting.write(input)
    try stdin.fileHandleForWriting.close()
    let data = stdout.fileHandleForReading.readDataToEndOfFile()
    let errorText = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    try #require(process.terminationStatus == 0, "\(script) failed (scripts/test.sh installs boto3): \(errorText)")
    return data
}
