package import Testing

/// The tags scripts/test.sh runs its phases by (docs/development.md, "Test phases"). An untagged suite runs in the
/// main phase, beside the others.
extension Tag {
    /// Timing-sensitive suites that inject faults or wait on real alerting pipelines: the `faults` phase, after the
    /// main one, so a busy machine does not bend their timings.
    @Tag package static var faults: Self
    /// Long suites that take both cores for a while (the outbox's SIGKILL loop): a phase of their own.
    @Tag package static var slow: Self
    /// Load and soak runs (wrk, many backends): alone, so they measure only themselves.
    @Tag package static var load: Self
    /// The server matrix (JuiceFS, rclone, Swift, LocalStack, RGW, moto against boto3): its own phase, after the
    /// servers scripts/servers.sh started, and the check of docs/compatibility.md it regenerates.
    @Tag package static var matrix: Self
    /// Tests of the release binary (`$S3CANARY_RELEASE_BINARY`), run after scripts/release.sh built it.
    @Tag package static var release: Self
}
