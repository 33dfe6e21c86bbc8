// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "s3-canary",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ObjectStorage", targets: ["ObjectStorage"]),
        .executable(name: "s3-canary", targets: ["s3-canary"]),
    ],
    dependencies: [
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
    ],
    targets: [
        // S3 client and object-backend abstraction; no metrics or server imports, usable on its own.
        .target(
            name: "ObjectStorage",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The sidecar, in layers the compiler enforces (docs/design.md, "Targets"): each target imports only the
        // ones below it, so a dependency cycle fails to build.
        // Configuration model, loader and every default.
        .target(
            name: "SidecarConfig",
            dependencies: [
                "ObjectStorage",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The pure circuit breaker, its ObjectBackend decorator, failure classification and deadlines.
        .target(
            name: "SidecarBreaker",
            dependencies: [
                "ObjectStorage",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The canary cycle, the scheduler and the sweeper.
        .target(
            name: "SidecarCanary",
            dependencies: [
                "ObjectStorage",
                "SidecarConfig",
                "SidecarBreaker",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The Prometheus exposition: metric families, the text, OpenMetrics and protobuf writers, native histograms.
        // Depends on nothing of ours: it could be a package of its own.
        .target(name: "PrometheusExposition"),
        // The event model: what happened (breaker transitions, service events), as every payload renders it.
        .target(
            name: "SidecarEvents",
            dependencies: ["ObjectStorage", "SidecarConfig", "SidecarBreaker"]
        ),
        // The canary's metric catalogue, the status board and the hook that fans events out.
        .target(
            name: "SidecarTelemetry",
            dependencies: [
                "PrometheusExposition",
                "SidecarEvents",
                "ObjectStorage",
                "SidecarConfig",
                "SidecarBreaker",
                "SidecarCanary",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // What survives a restart (state_dir): the durable event outbox and the remembered outages, in SQLite.
        .target(
            name: "SidecarState",
            dependencies: [
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Webhook payloads, signing and delivery.
        .target(
            name: "SidecarNotify",
            dependencies: [
                .product(name: "NIOHTTP1", package: "swift-nio"),
                "SidecarState",
                "ObjectStorage",
                "SidecarConfig",
                "SidecarCanary",
                "PrometheusExposition",
                "SidecarEvents",
                "SidecarTelemetry",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The HTTP endpoint: route table, access rules and TLS, scrape cache, status document and page.
        .target(
            name: "SidecarServer",
            dependencies: [
                "ObjectStorage",
                "SidecarConfig",
                "SidecarBreaker",
                "SidecarCanary",
                "PrometheusExposition",
                "SidecarTelemetry",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The wiring on top: the reload owner, backend factory, application, demo and one-shot probe.
        .target(
            name: "CanarySidecar",
            dependencies: [
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                "SidecarState",
                "ObjectStorage",
                "SidecarConfig",
                "SidecarBreaker",
                "SidecarCanary",
                "PrometheusExposition",
                "SidecarEvents",
                "SidecarTelemetry",
                "SidecarNotify",
                "SidecarServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The build's identity (git commit, Swift version), written into the linked binary by scripts/stamp.py.
        .target(name: "BuildStamp"),
        .executableTarget(
            name: "s3-canary",
            dependencies: [
                "BuildStamp",
                "CanarySidecar",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "ObjectStorage",
                "SidecarConfig",
                "SidecarCanary",
                "SidecarTelemetry",
                "SidecarServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Micro benchmarks (`swift run -c release s3-canary-bench`); scripts/bench.sh runs them into bench/REPORT.md.
        .executableTarget(
            name: "s3-canary-bench",
            dependencies: [
                "SidecarCanary",
                .product(name: "Logging", package: "swift-log"),
                "ObjectStorage",
                "SidecarConfig",
                "SidecarBreaker",
                "PrometheusExposition",
                "SidecarTelemetry",
                "SidecarServer",
                "SidecarState",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/Micro"
        ),
        // One test target per library target (its own module's tests, with what they need below it), the end-to-end
        // suites against real servers in IntegrationTests, and the harness every test target shares: child
        // processes, free ports, waits on state, a manual clock.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "PrometheusExpositionTests",
            dependencies: ["PrometheusExposition"]
        ),
        .testTarget(
            name: "ObjectStorageTests",
            dependencies: [
                "ObjectStorage",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "SidecarConfigTests",
            dependencies: ["SidecarConfig", "ObjectStorage"]
        ),
        .testTarget(
            name: "SidecarBreakerTests",
            dependencies: [
                "SidecarBreaker",
                "ObjectStorage",
                "SidecarConfig",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SidecarEventsTests",
            dependencies: ["SidecarEvents", "SidecarBreaker", "SidecarConfig"]
        ),
        .testTarget(
            name: "SidecarCanaryTests",
            dependencies: [
                "SidecarCanary",
                "ObjectStorage",
                "SidecarBreaker",
                "SidecarConfig",
                "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SidecarTelemetryTests",
            dependencies: [
                "SidecarTelemetry",
                "ObjectStorage",
                "PrometheusExposition",
                "SidecarBreaker",
                "SidecarCanary",
                "SidecarConfig",
                "SidecarEvents",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SidecarStateTests",
            dependencies: [
                "SidecarState",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "SidecarNotifyTests",
            dependencies: [
                "SidecarNotify",
                "ObjectStorage",
                "PrometheusExposition",
                "SidecarConfig",
                "SidecarEvents",
                "SidecarState",
                "SidecarTelemetry",
                "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "SidecarServerTests",
            dependencies: [
                "SidecarServer",
                "ObjectStorage",
                "PrometheusExposition",
                "SidecarBreaker",
                "SidecarCanary",
                "SidecarConfig",
                "SidecarTelemetry",
                "TestSupport",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "CanarySidecarTests",
            dependencies: [
                "CanarySidecar",
                "ObjectStorage",
                "PrometheusExposition",
                "SidecarBreaker",
                "SidecarCanary",
                "SidecarConfig",
                "SidecarEvents",
                "SidecarNotify",
                "SidecarServer",
                "SidecarTelemetry",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "CanarySidecar",
                "ObjectStorage",
                "PrometheusExposition",
                "SidecarConfig",
                "SidecarEvents",
                "SidecarNotify",
                "SidecarServer",
                "SidecarTelemetry",
                "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ]
)

// Imports are part of each target's contract: a file sees only the modules it imports (MemberImportVisibility), and
// an import is internal unless the file's public API needs it (`public import`, InternalImportsByDefault), so an
// unused or leaking import shows. CI also builds with `--explicit-target-dependency-import-check error`.
for target in package.targets {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
