import BuildStamp
import SidecarTelemetry

/// Which build this is: the version the source declares, and the commit and Swift toolchain that
/// scripts/stamp.py wrote into the binary after linking (Sources/BuildStamp/stamp.c says why then). A binary nobody
/// stamped (a plain `swift build`) says `unknown` for the commit and the language mode's Swift version.
struct BuildInfo: Sendable {
    static let version = "0.1.0"
    static let current = BuildInfo(stamp: String(cString: s3canary_build_stamp()))

    let revision: String
    let swiftVersion: String
    let stamped: Bool

    /// Reads `revision=COMMIT swift=VERSION`; a word it does not know is ignored, a missing one is `unknown`.
    init(stamp: String) {
        var fields: [Substring: Substring] = [:]
        for word in stamp.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        self.revision = fields["revision"].map(String.init) ?? "unknown"
        self.swiftVersion = fields["swift"].map(String.init) ?? CanaryMetrics.swiftVersion
        self.stamped = fields["revision"] != nil
    }

    /// What `s3-canary --version` prints.
    var versionText: String {
        let revision = self.stamped ? self.revision : "unknown (not built by scripts/release.sh)"
        return "s3-canary \(Self.version)\nrevision: \(revision)\nswift: \(self.swiftVersion)"
    }
}
