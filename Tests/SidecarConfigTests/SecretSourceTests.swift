import Foundation
import ObjectStorage
import Testing

@testable import SidecarConfig

@Suite("Secret sources")
struct SecretSourceTests {
    @Test func secretFromAMissingFileNamesTheFieldAndPath() {
        do {
            _ = try SecretSource.file("/nonexistent/secret").resolve(field: "credentials.secret_access_key_file")
            Issue.record("expected an error")
        } catch let error as ConfigurationError {
            #expect(error.problems.first?.field == "credentials.secret_access_key_file")
            #expect(error.description.contains("/nonexistent/secret"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func secretFromFileDropsTheTrailingNewline() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try Data("s3cr3t\n".utf8).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        #expect(try SecretSource.file(path.path).resolve(field: "f") == "s3cr3t")
    }

    @Test func secretFromEnvironment() throws {
        #expect(try SecretSource.environment("K").resolve(field: "f", environment: ["K": "v"]) == "v")
        #expect(throws: ConfigurationError.self) {
            try SecretSource.environment("K").resolve(field: "f", environment: [:])
        }
        #expect(throws: ConfigurationError.self) { try SecretSource.value("").resolve(field: "f") }
    }
}
